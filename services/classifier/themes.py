"""Multi-label theme matching from weighted terms; zero-shot for user-defined themes.

Every theme becomes a table of stemmed terms (words or phrases) with weights. Default
theme ids use the hand-written lexicon; any theme also uses its own keywords (strong
evidence), description words (weak) and example words (weaker). Evidence adds up per
theme, each distinct term once, and becomes a confidence ``1 - exp(-evidence)``.

Where the lexicon lists forms of a term apart, each keeps its own weight (``text.weigh_forms``):
"=train" is travel, "training" is not. A term written ``~term`` is context: it says something
of the theme only next to another of the theme's terms that is not context (a clue), however
many context terms a comment has ("it works great" is praise, not a product-quality report;
"three weeks" is not a complaint about waiting until something waits). An idiom written
``word ... word:0`` holds its two words anywhere in one clause, in either order: "attention to
us was paid" is the idiom "pay attention" as much as "paid attention" is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from npsloop.services.classifier.lexicon import THEME_TERMS
from npsloop.services.classifier.text import Forms, Key, is_punct, raw_tokens, stem, weigh_forms, written_form
from npsloop.shared.taxonomy import ThemeDefinition

KEYWORD_WEIGHT = 1.0
DESCRIPTION_WEIGHT = 0.4
EXAMPLE_WEIGHT = 0.35

# Words too common in feedback to say what a comment is about (for zero-shot sources).
GENERIC = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "etc",
        "few",
        "for",
        "from",
        "further",
        "get",
        "gets",
        "got",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "customer",
        "customers",
        "comment",
        "comments",
        "feedback",
        "experience",
        "experiences",
        "thing",
        "things",
        "something",
        "anything",
        "everything",
        "problem",
        "problems",
        "issue",
        "issues",
        "good",
        "bad",
        "great",
        "poor",
        "better",
        "worse",
        "like",
        "liked",
        "really",
        "well",
        "also",
        "way",
        "ways",
        "lot",
        "lots",
        "make",
        "made",
        "use",
        "used",
        "using",
        "service",
        "services",
        "product",
        "products",
        "company",
        "theme",
        "themes",
        "about",
        "related",
        "regarding",
        "include",
        "includes",
        "including",
        "e",
        "g",
        "eg",
        "ie",
        "such",
        "mention",
        "mentions",
        "mentioning",
        "comments",
        "people",
        "say",
        "said",
        "says",
        "whether",
        "any",
        "kind",
        "sort",
        "type",
        "types",
        "when",
        "where",
        "how",
        "much",
        "many",
        "via",
        "per",
        "them",
        "users",
        "user",
    ]
)


def _entries(spec: str) -> list[tuple[str, float]]:
    entries = []
    for entry in spec.replace("\n", " ").split(","):
        term, _, weight = entry.strip().partition(":")
        if term:
            entries.append((term, float(weight) if weight else 1.0))
    return entries


GAP = "..."


def _parse_terms(spec: str) -> tuple[dict[Key, float], dict[Key, Forms]]:
    """``"term[:weight], ..."`` -> (key -> weight of forms not listed, key -> listed forms' weights)."""
    return weigh_forms([(term.lstrip("~"), weight) for term, weight in _entries(spec) if GAP not in term])


def _apart_idioms(spec: str) -> frozenset[tuple[str, str]]:
    """The stems of the idioms written ``word ... word:0``: two words that make an idiom anywhere
    in one clause, in either order; each is listed both ways round."""
    pairs = set()
    for term, _ in _entries(spec):
        if GAP in term:
            first, _, second = (stem(w.strip()) for w in term.partition(GAP))
            pairs |= {(first, second), (second, first)}
    return frozenset(pairs)


def _context_keys(spec: str) -> frozenset[Key]:
    """The keys of the terms written ``~term``: context, not a clue (see the module's docstring).
    Every form of such a key is context."""
    keys = set()
    for term, _ in _entries(spec):
        if term.startswith("~") and GAP not in term:
            words = [w for w in raw_tokens(term.lstrip("~=")) if not is_punct(w)]
            keys.add(tuple(stem(w) for w in words))
    return frozenset(keys)


_LEXICON = {theme_id: _parse_terms(spec) for theme_id, spec in THEME_TERMS.items()}
_CONTEXT = {theme_id: _context_keys(spec) for theme_id, spec in THEME_TERMS.items()}
_APART = {theme_id: _apart_idioms(spec) for theme_id, spec in THEME_TERMS.items()}


def _content_stems(text: str) -> list[str]:
    return [
        stem(w) for w in raw_tokens(text) if not is_punct(w) and w not in GENERIC and len(w) > 2 and not w.isdigit()
    ]


def theme_forms(theme: ThemeDefinition) -> dict[Key, Forms]:
    """Per term of the built-in lexicon, the weights of the forms it lists apart."""
    return _LEXICON[theme.id][1] if theme.id in _LEXICON else {}


def theme_context(theme: ThemeDefinition) -> frozenset[Key]:
    """Terms of the built-in lexicon that count for the theme only next to a clue."""
    return _CONTEXT.get(theme.id, frozenset())


def theme_apart_idioms(theme: ThemeDefinition) -> frozenset[tuple[str, str]]:
    """Pairs of stems of the built-in lexicon that make an idiom anywhere in one clause (``word ... word:0``)."""
    return _APART.get(theme.id, frozenset())


def theme_terms(theme: ThemeDefinition) -> dict[Key, float]:
    """The weighted term table of one theme (the weight of forms not listed apart, see ``theme_forms``)."""
    table: dict[tuple[str, ...], float] = {}

    def add(key: tuple[str, ...], weight: float) -> None:
        if key and weight > table.get(key, 0.0):
            table[key] = weight

    builtin = _LEXICON[theme.id][0] if theme.id in _LEXICON else None
    if builtin:
        table.update(builtin)
    else:
        for word in _content_stems(theme.description):
            add((word,), DESCRIPTION_WEIGHT)
        for word in _content_stems(theme.id.replace("_", " ")):
            add((word,), DESCRIPTION_WEIGHT)
        if theme.label:
            for word in _content_stems(theme.label):
                add((word,), DESCRIPTION_WEIGHT)
    counts: dict[str, int] = defaultdict(int)
    for example in theme.examples:
        for word in set(_content_stems(example)):
            counts[word] += 1
    for word, count in counts.items():
        add((word,), min(KEYWORD_WEIGHT * 0.8, EXAMPLE_WEIGHT * count))
    for keyword in theme.keywords:
        key = tuple(stem(w) for w in raw_tokens(keyword) if not is_punct(w))
        if key and key not in (builtin or {}):
            add(key, KEYWORD_WEIGHT)
    return table


Entry = tuple[Key, int, float, Forms | None]  # (term, theme index, weight, listed forms' weights)


@dataclass
class ThemeMatcher:
    """Matches all themes of a taxonomy in one pass over the stems."""

    theme_ids: tuple[str, ...]
    index: dict[str, list[Entry]]  # first stem -> entries starting with it, longest first
    context: tuple[frozenset[Key], ...] = ()  # per theme, the terms that need a clue (``~term``)
    apart: tuple[frozenset[tuple[str, str]], ...] = ()  # per theme, idioms of two words apart (``a ... b:0``)

    def __post_init__(self) -> None:
        self._apart_words = frozenset(a for pairs in self.apart for a, _ in pairs)

    def _apart_positions(self, stems: list[str]) -> set[tuple[int, int]]:
        """(theme index, position) of the words of an idiom of two words apart, where both are in
        one clause (between punctuation): there they say nothing of the theme."""
        hits: set[tuple[int, int]] = set()
        if self._apart_words.isdisjoint(stems):
            return hits
        start = 0
        for end in range(len(stems) + 1):
            if end < len(stems) and stems[end] != "|":
                continue
            clause = set(stems[start:end])
            for t_idx, pairs in enumerate(self.apart):
                for a, b in pairs:
                    if a in clause and b in clause:
                        hits.update((t_idx, j) for j in range(start, end) if stems[j] in (a, b))
            start = end + 1
        return hits

    @classmethod
    def build(cls, themes: list[ThemeDefinition]) -> ThemeMatcher:
        index: dict[str, list[Entry]] = defaultdict(list)
        for t_idx, theme in enumerate(themes):
            forms = theme_forms(theme)
            for key, weight in theme_terms(theme).items():
                index[key[0]].append((key, t_idx, weight, forms.get(key)))
        for entries in index.values():
            entries.sort(key=lambda e: -len(e[0]))
        return cls(
            tuple(t.id for t in themes),
            dict(index),
            tuple(theme_context(t) for t in themes),
            tuple(theme_apart_idioms(t) for t in themes),
        )

    def with_factors(self, factors: Mapping[str, Mapping[Key, float]]) -> ThemeMatcher:
        """A copy in which a theme's listed terms weigh ``factor`` times as much (every form of
        them); a factor of 0 drops the term. What an organisation's own labels say of the
        built-in vocabulary (``training.fit_term_factors``)."""
        index: dict[str, list[Entry]] = {}
        for first, entries in self.index.items():
            kept: list[Entry] = []
            for key, t_idx, weight, forms in entries:
                factor = factors.get(self.theme_ids[t_idx], {}).get(key)
                if factor is None or (not weight and forms is None):  # unchanged, or an idiom
                    kept.append((key, t_idx, weight, forms))
                elif factor > 0:
                    scaled = {form: w * factor for form, w in forms.items()} if forms is not None else None
                    kept.append((key, t_idx, weight * factor, scaled))
            if kept:
                index[first] = kept
        return ThemeMatcher(self.theme_ids, index, self.context, self.apart)

    def matched_terms(
        self,
        stems: list[str],
        denied: list[bool] | None = None,
        requests: AbstractSet[tuple[str, ...]] = frozenset(),
        tokens: list[str] | None = None,
    ) -> dict[tuple[int, Key], float]:
        """(theme index, term) -> weight of every term that counts in ``stems`` (see ``evidence``)."""
        return self._match(stems, denied, requests, tokens)[0]

    def _match(
        self,
        stems: list[str],
        denied: list[bool] | None,
        requests: AbstractSet[tuple[str, ...]],
        tokens: list[str] | None,
    ) -> tuple[dict[tuple[int, Key], float], set[int]]:
        """The matched terms, and the themes that have a clue among them: a term that is not
        context, nor inside a context term ("works" in "works great" is part of the praise)."""
        found: dict[tuple[int, Key], float] = {}
        clues: set[int] = set()
        guarded: dict[int, int] = {}  # theme index -> position up to which an idiom covers the words
        covered: dict[int, int] = {}  # theme index -> position up to which a context term covers the words
        index, context = self.index, self.context
        apart = self._apart_positions(stems) if self._apart_words else set()
        for i, s in enumerate(stems):
            entries = index.get(s)
            if not entries:
                continue
            for key, t_idx, weight, forms in entries:  # longest first
                size = len(key)
                if size > 1 and tuple(stems[i : i + size]) != key:
                    continue
                if guarded.get(t_idx, 0) > i or (apart and (t_idx, i) in apart):
                    continue
                if not weight and forms is None:  # an idiom ("pay attention"): its words say nothing here
                    guarded[t_idx] = i + size
                    continue
                if denied is not None and denied[i] and key in requests:
                    continue
                if forms is not None and tokens is not None:
                    weight = forms.get(written_form(tokens, i, size), weight)
                if weight <= 0.0:
                    continue
                if context and key in context[t_idx]:
                    covered[t_idx] = max(covered.get(t_idx, 0), i + size)
                elif covered.get(t_idx, 0) < i + size:
                    clues.add(t_idx)
                if weight > found.get((t_idx, key), 0.0):
                    found[(t_idx, key)] = weight
        return found, clues

    def evidence(
        self,
        stems: list[str],
        denied: list[bool] | None = None,
        requests: AbstractSet[tuple[str, ...]] = frozenset(),
        tokens: list[str] | None = None,
    ) -> list[float]:
        """Summed weight per theme (each distinct term counted once, at its strongest form).

        ``tokens`` are the words the stems came from, one for one: where the lexicon weighs a
        word's forms apart, they say which form was written (without them, every form counts
        as one not listed). A term that is a request phrase ("could have", "would be nice")
        does not count where the request is denied ("nothing could have been better"): that
        is praise, not a feature request. A term weighted 0 is an idiom whose words do not
        count for the theme ("pay attention" is not pricing). Other terms count even when
        negated: "not slow at all" still talks about performance. Context terms (``~term``)
        add to a theme only where a clue was found too, a term that is neither context nor
        inside a context term: without one, however many context terms, the evidence is 0.
        """
        totals = [0.0] * len(self.theme_ids)
        found, clues = self._match(stems, denied, requests, tokens)
        for (t_idx, _), weight in found.items():
            if t_idx in clues:
                totals[t_idx] += weight
        return totals


def comment_stems(tokens: list[str]) -> list[str]:
    """Stems of the word tokens, with sentence/clause breaks kept as a barrier token."""
    return [stem(t) if not is_punct(t) else "|" for t in tokens]
