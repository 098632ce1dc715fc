"""A cheap, deterministic language guess: writing system first, then stopword counts.

Only English is supported for themes; for any other detected language the classifier
returns the code and no themes rather than guessing.
"""

from __future__ import annotations

SUPPORTED = frozenset({"en"})

_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "and",
            "is",
            "was",
            "were",
            "are",
            "to",
            "of",
            "in",
            "it",
            "for",
            "on",
            "with",
            "that",
            "this",
            "you",
            "my",
            "i",
            "we",
            "they",
            "be",
            "have",
            "has",
            "had",
            "not",
            "but",
            "very",
            "all",
            "so",
            "at",
            "as",
            "from",
            "our",
            "your",
            "their",
            "me",
            "us",
            "them",
            "he",
            "she",
            "his",
            "her",
            "its",
            "would",
            "could",
            "should",
            "been",
            "an",
            "a",
            "or",
            "if",
            "just",
            "about",
            "out",
            "up",
            "more",
            "no",
            "what",
            "when",
            "there",
            "which",
            "will",
            "can",
            "one",
            "do",
            "did",
            "does",
            "thank",
            "thanks",
            "nothing",
            "everything",
            "staff",
            "good",
            "great",
            "really",
            "always",
            "well",
            "always",
            "much",
            "too",
            "also",
            "am",
            "by",
            "after",
            "before",
            "because",
            "than",
            "then",
            "how",
            "any",
            "some",
            "get",
            "got",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "de",
            "del",
            "que",
            "y",
            "en",
            "un",
            "una",
            "es",
            "por",
            "con",
            "para",
            "muy",
            "pero",
            "su",
            "sus",
            "lo",
            "como",
            "mas",
            "más",
            "fue",
            "son",
            "está",
            "esta",
            "este",
            "esto",
            "todo",
            "todos",
            "nada",
            "bien",
            "bueno",
            "buena",
            "gracias",
            "servicio",
            "atención",
            "mi",
            "me",
            "se",
            "al",
            "porque",
            "cuando",
            "también",
            "hay",
            "excelente",
            "mal",
            "malo",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "de",
            "des",
            "du",
            "et",
            "est",
            "un",
            "une",
            "en",
            "que",
            "qui",
            "pour",
            "pas",
            "dans",
            "sur",
            "avec",
            "très",
            "tres",
            "mais",
            "ce",
            "cette",
            "sont",
            "était",
            "etait",
            "nous",
            "vous",
            "je",
            "il",
            "elle",
            "tout",
            "tous",
            "rien",
            "bien",
            "bon",
            "bonne",
            "merci",
            "service",
            "au",
            "aux",
            "été",
            "ete",
            "plus",
            "ne",
            "trop",
            "personnel",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ein",
            "eine",
            "zu",
            "den",
            "mit",
            "von",
            "sehr",
            "auf",
            "für",
            "fur",
            "es",
            "ich",
            "wir",
            "sie",
            "war",
            "sind",
            "auch",
            "aber",
            "dass",
            "wie",
            "bei",
            "nur",
            "noch",
            "gut",
            "schlecht",
            "danke",
            "alles",
            "nichts",
            "immer",
            "mehr",
            "kein",
            "keine",
            "wurde",
        ]
    ),
    "it": frozenset(
        [
            "il",
            "lo",
            "la",
            "gli",
            "le",
            "di",
            "del",
            "della",
            "che",
            "e",
            "è",
            "un",
            "una",
            "per",
            "con",
            "non",
            "sono",
            "molto",
            "ma",
            "come",
            "anche",
            "tutto",
            "tutti",
            "niente",
            "bene",
            "buono",
            "grazie",
            "servizio",
            "personale",
            "mi",
            "ho",
            "era",
            "stato",
            "più",
            "piu",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "a",
            "os",
            "as",
            "de",
            "do",
            "da",
            "dos",
            "das",
            "que",
            "e",
            "é",
            "um",
            "uma",
            "para",
            "com",
            "não",
            "nao",
            "muito",
            "mas",
            "como",
            "foi",
            "são",
            "sao",
            "está",
            "esta",
            "tudo",
            "nada",
            "bem",
            "bom",
            "boa",
            "obrigado",
            "obrigada",
            "atendimento",
            "serviço",
            "servico",
            "mais",
        ]
    ),
    "nl": frozenset(
        [
            "de",
            "het",
            "een",
            "en",
            "is",
            "van",
            "dat",
            "niet",
            "ik",
            "je",
            "we",
            "zijn",
            "was",
            "met",
            "voor",
            "op",
            "te",
            "er",
            "maar",
            "ook",
            "heel",
            "zeer",
            "goed",
            "slecht",
            "alles",
            "niets",
            "bedankt",
            "dank",
            "personeel",
            "altijd",
        ]
    ),
}

# Ranges of writing systems whose language is (nearly) settled by the script itself.
_SCRIPTS: tuple[tuple[int, int, str], ...] = (
    (0x0400, 0x04FF, "ru"),
    (0x0370, 0x03FF, "el"),
    (0x0590, 0x05FF, "he"),
    (0x0600, 0x06FF, "ar"),
    (0x0900, 0x097F, "hi"),
    (0x0E00, 0x0E7F, "th"),
    (0x3040, 0x30FF, "ja"),
    (0xAC00, 0xD7AF, "ko"),
    (0x1100, 0x11FF, "ko"),
    (0x4E00, 0x9FFF, "zh"),
)


def _script_language(text: str) -> str | None:
    counts: dict[str, int] = {}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        code = ord(ch)
        if code < 0x0370:
            continue
        for low, high, lang in _SCRIPTS:
            if low <= code <= high:
                counts[lang] = counts.get(lang, 0) + 1
                break
    if not counts or not letters:
        return None
    lang, count = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    if count * 2 < letters:
        return None
    if lang == "zh" and counts.get("ja"):
        return "ja"  # Japanese mixes kanji with kana
    return lang


def detect_language(text: str, word_list: list[str], english_hits: int = 0) -> str:
    """ISO 639-1 code of ``text`` (``word_list`` = its lower-cased words), or ``"und"``.

    ``english_hits`` counts words the English lexicons know, as extra English evidence.
    """
    by_script = _script_language(text)
    if by_script:
        return by_script
    if not word_list:
        return "und"
    hits = dict.fromkeys(_STOPWORDS, 0)
    for word in word_list:
        for lang, stops in _STOPWORDS.items():
            if word in stops:
                hits[lang] += 1
    hits["en"] += english_hits
    best_other = max((lang for lang in hits if lang != "en"), key=lambda lang: (hits[lang], lang))
    if hits[best_other] >= 2 and hits[best_other] > 1.5 * hits["en"]:
        return best_other
    if hits["en"] > 0:
        return "en"
    if hits[best_other] >= 1 and len(word_list) <= 3:
        return best_other
    return "und"
