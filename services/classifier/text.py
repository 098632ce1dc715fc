"""Tokenising, stemming and negation scopes shared by the classifier modules."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[.!?;:,()\-\u2013\u2014/]", re.UNICODE)
_CLAUSE_BREAK = frozenset(".!?;:,()-\u2013\u2014/")
SENTENCE_BREAK = frozenset(".!?;")
# A sentence ends at a SENTENCE_BREAK followed by space, or at a line break ("3.5 stars" stays whole).
_SENTENCE_END = re.compile(rf"(?<=[{re.escape(''.join(sorted(SENTENCE_BREAK)))}])\s+|\s*\n\s*")

NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "none",
        "neither",
        "nor",
        "without",
        "cannot",
        "hardly",
        "barely",
        "isnt",
        "wasnt",
        "arent",
        "werent",
        "dont",
        "doesnt",
        "didnt",
        "cant",
        "couldnt",
        "wont",
        "wouldnt",
        "shouldnt",
        "havent",
        "hasnt",
        "hadnt",
        "aint",
        "lack",
        "lacking",
    ]
)
# Words that end a negation scope early ("not slow but ...").
SCOPE_END = frozenset(["but", "however", "although", "though", "yet", "whereas", "except", "while"])

# Words that only make sense under a negation, so the negated clause runs on past them.
NEGATIVE_POLARITY_ITEMS = frozenset(["any", "anything", "anyone", "anybody", "anywhere"])

_CONTRACTIONS = {
    "n't": " not",
    "can't": "can not",
    "won't": "will not",
    "cannot": "can not",
    "shan't": "shall not",
}


_STEM_EXCEPTIONS = {
    "friendly": "friendly",
    "only": "only",
    "early": "early",
    "family": "family",
    "reply": "reply",
    "lovely": "lovely",
    "unfriendly": "unfriendly",
    "news": "news",
    "always": "always",
}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A small, deterministic suffix stripper (consistency matters more than linguistics)."""
    w = word
    if len(w) <= 3:
        return w
    if w in _STEM_EXCEPTIONS:
        return _STEM_EXCEPTIONS[w]
    if w.endswith("'s"):
        w = w[:-2]
    for suffix, repl, min_len in (
        ("ational", "ate", 4),
        ("ization", "ize", 4),
        ("isation", "ize", 4),
        ("fulness", "ful", 4),
        ("iveness", "ive", 4),
        ("ousness", "ous", 4),
        ("ement", "e", 4),
        ("ments", "", 4),
        ("ment", "", 4),
        ("ingly", "", 4),
        ("ily", "y", 3),
        ("edly", "", 4),
        ("ness", "", 4),
        ("ities", "ity", 3),
        ("iness", "y", 3),
        ("ies", "y", 3),
        ("ied", "y", 3),
        ("ying", "y", 3),
        ("ing", "", 3),
        ("ed", "", 3),
        ("ly", "", 4),
        ("es", "", 4),
        ("s", "", 3),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= min_len:
            if suffix == "s" and (w.endswith(("ss", "us", "is"))):
                break
            if suffix == "es" and not re.search(r"(?:ss|sh|ch|x|z|o)es$", w):
                w = w[:-1]
                break
            w = w[: len(w) - len(suffix)] + repl
            if suffix in ("ing", "ed") and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if len(w) > 4 and w.endswith("e") and not w.endswith("ee"):
        w = w[:-1]
    return w


def normalise(text: str) -> str:
    text = text.translate(_APOSTROPHES).lower()
    for src, dst in _CONTRACTIONS.items():
        text = text.replace(src, dst)
    return text


def raw_tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens of ``text``."""
    return _TOKEN.findall(normalise(text))


def sentences(text: str, min_words: int = 2) -> list[str]:
    """The sentences of ``text`` that hold at least ``min_words`` words; [] unless there are two
    or more (one sentence is the text itself)."""
    found = [part for part in _SENTENCE_END.split(text.strip()) if len(part.split()) >= min_words]
    return found if len(found) > 1 else []


def words(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t not in _CLAUSE_BREAK]


def negation_flags(
    tokens: Sequence[str],
    window: int = 4,
    *,
    negators: frozenset[str] = NEGATORS,
    breaks: frozenset[str] = _CLAUSE_BREAK,
) -> list[bool]:
    """For each token, whether it falls in the scope of a preceding negator. ``negators`` and
    ``breaks``: for other units than raw tokens (analysed stems: negator stems, "|")."""
    flags = [False] * len(tokens)
    remaining = 0
    for i, tok in enumerate(tokens):
        if tok in breaks or tok in SCOPE_END:
            remaining = 0
            continue
        if tok in negators or tok.replace("'", "") in negators:
            remaining = window
            continue
        if remaining:
            flags[i] = True
            # "any" words keep the scope open: "I can't think of anything that was good".
            remaining = window if tok in NEGATIVE_POLARITY_ITEMS else remaining - 1
    return flags


def is_punct(tok: str) -> bool:
    return tok in _CLAUSE_BREAK


Key = tuple[str, ...]
Forms = dict[str, float]  # surface form (words joined by a space) -> weight


def weigh_forms(entries: list[tuple[str, float]]) -> tuple[dict[Key, float], dict[Key, Forms]]:
    """Lexicon entries ``(term, weight)`` -> (stemmed key -> weight of forms not listed,
    stemmed key -> the listed forms' weights, for keys whose forms are told apart).

    Forms of a word can mean different things ("parking" is logistics, "park" is often a
    place's name; "caring" praises, "care" names the service) and the stemmer gives them one
    key. Where a key has several listed forms, each keeps its own weight and forms not listed
    take the weakest (by size, keeping the sign); a term written ``=word`` counts only as
    written, so "=caring" is not "care". (Before builtin-1.3 one form's weight stood for
    all: "phoned" made every "phone" an ease-of-use comment, "caring" made every "care" praise.)
    """
    listed: dict[Key, list[tuple[str, float, bool]]] = {}
    for term, weight in entries:
        exact = term.startswith("=")
        words = [w for w in raw_tokens(term.lstrip("=")) if not is_punct(w)]
        if words:
            listed.setdefault(tuple(stem(w) for w in words), []).append((" ".join(words), weight, exact))
    table: dict[Key, float] = {}
    forms: dict[Key, Forms] = {}
    for key, found in listed.items():
        if len(found) == 1 and not found[0][2]:
            table[key] = found[0][1]
            continue
        table[key] = min((w for _, w, exact in found if not exact), key=abs, default=0.0)
        forms[key] = {}
        for form, w, _ in found:
            if abs(w) > abs(forms[key].get(form, 0.0)):
                forms[key][form] = w
    return table, forms


def written_form(tokens: list[str], i: int, size: int) -> str:
    """The words of a ``size``-word term found at ``tokens[i]``, as written (the ``Forms`` key)."""
    return tokens[i] if size == 1 else " ".join(tokens[i : i + size])
