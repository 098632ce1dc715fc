"""The classifier contract and the built-in (zero-training) model.

Pure functions, no database. The built-in model reads comments with the lexicons
(``lexicon``, ``sentiment``, ``themes``); trained models (``trained``) start from its reading.
Which one a process applies is ``active.load_classifier``'s choice.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from npsloop.services.classifier.language import SUPPORTED, detect_language
from npsloop.services.classifier.lexicon import EMPTY_ANSWERS, NO_OPINION_CORES, NO_OPINION_FILLERS
from npsloop.services.classifier.sentiment import (
    POLARITY,
    SUGGESTIONS,
    LexicalEvidence,
    denied_requests,
    lexical_evidence,
    sentiment_from,
)
from npsloop.services.classifier.text import Key, is_punct, raw_tokens
from npsloop.services.classifier.themes import ThemeMatcher, comment_stems
from npsloop.shared.taxonomy import DEFAULT_THEMES, ThemeDefinition, validate_taxonomy

# Raised whenever the built-in model reads a comment differently, so stored classifications
# say which reading they carry (1.1: no-opinion answers, negation past "any" words,
# treatment outcomes as product_quality; 1.2: praise for being looked after or cared about,
# negated polar phrases, "Nothing was good"; 1.3: forms of a word weighed apart, idioms
# weighted 0, outcome phrases; 1.4: missing_features needs a request, not a feature word
# alone: "exporting is easy", "couldn't wish for better", "I missed my appointment" are not;
# 1.5: how people say they were treated, "went above and beyond", "felt like a number", is support;
# 1.6: words that name a service, the product or a package, or say someone helped ("treatment",
# "product", "helped me", "access") need company before they are a theme, "in charge" / "easy
# to talk to" are idioms; a plea for help, being on hold or hung up on is negative, a "thanks"
# next to a complaint counts less; 1.7: context terms, words that only praise or blame the whole
# experience ("works great", "excellent care", a bare "easy"), durations ("three weeks") and
# "charge", tag a theme only beside a clue of it; a weak reading of a theme beside a main theme
# three times as strong is a passing mention, not tagged; 1.8: product_quality's catch-all words,
# a bare "quality", "problem", "issue", "help", "improve", and "money" for pricing count only
# beside a clue; "rushed" is said of staff, not of speed; one word of speed or waiting beside a
# main theme twice as strong is a passing mention).
BUILTIN_VERSION = "builtin-1.8"
CATEGORIES = ("promoter", "passive", "detractor")
# A theme read from weak words only (less evidence than one full-weight term) in a comment whose
# main theme has three times its evidence or more is a passing mention, not what it is about.
WEAK_EVIDENCE = 1.0
PASSING_SHARE = 1 / 3
# Themes whose words mostly qualify what a comment is about ("quick", "on time", "waiting",
# "memory": of a reply, an appointment, a person) are a passing mention also when read from one
# full-weight term (evidence below FULL_EVIDENCE) beside a main theme with 1 / share times their
# evidence. Chosen on NHS and URR; for every other theme the same rule lost theme micro-F1.
FULL_EVIDENCE = 1.5
PASSING_FULL_SHARE: dict[str, float] = {"performance_reliability": 0.5}


def category_for_score(score: int | None) -> str | None:
    """9-10 promoter, 7-8 passive, 0-6 detractor; no score, no category."""
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"score must be an integer 0-10, got {score!r}")
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


@dataclass(frozen=True)
class ThemeScore:
    id: str
    confidence: float


@dataclass(frozen=True)
class Classification:
    category: str | None
    themes: tuple[ThemeScore, ...]
    sentiment: str  # positive | neutral | negative
    sentiment_score: float  # -1..1
    language: str  # ISO 639-1, or "und"
    classifier_version: str

    def as_dict(self) -> dict:
        return {
            "category": self.category,
            "themes": [{"id": t.id, "confidence": t.confidence} for t in self.themes],
            "sentiment": self.sentiment,
            "sentiment_score": self.sentiment_score,
            "language": self.language,
            "classifier_version": self.classifier_version,
        }


@runtime_checkable
class Classifier(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def prepares_batches(self) -> bool:
        """True where classifying a batch is worth doing ahead (``prepare``), off the event loop:
        a trained model that reads sentence embeddings. False for the rest, whose prepare does nothing."""
        ...

    def prepare(self, comments: Sequence[str | None]) -> None: ...

    def classify(self, comment: str | None, score: int | None) -> Classification: ...


@dataclass(frozen=True)
class Analysis:
    """What the built-in model reads from a comment; trained models reuse it as features."""

    empty: bool
    language: str
    stems: tuple[str, ...]  # "|" marks punctuation
    theme_evidence: tuple[float, ...]
    positive: float
    negative: float
    suggestions: float
    no_opinion: bool = False  # an empty answer that declines to give a view ("not sure")

    @property
    def unread(self) -> bool:
        """Nothing to read: an empty answer, or a language the lexicon does not cover."""
        return self.empty or (self.language not in SUPPORTED and self.language != "und")


_EMPTY_STRIP = re.compile(r"[^\w\s]+", re.UNICODE)
_ENGLISH_STEMS = frozenset(k[0] for k in POLARITY)
# Compared after the fillers are dropped from both sides ("I do not really know").
_NO_OPINION = tuple(tuple(w for w in core if w not in NO_OPINION_FILLERS) for core in NO_OPINION_CORES)


def is_no_opinion_answer(comment: str | None, tokens: list[str] | None = None) -> bool:
    """Whether the comment only declines to give a view: "Don't know.", "I'm really not sure".

    ``tokens``: the comment's ``raw_tokens`` where the caller has them already."""
    if not comment or len(comment) > 80:
        return False
    tokens = [t.replace("'", "") for t in (raw_tokens(comment) if tokens is None else tokens) if not is_punct(t)]
    tokens = [t for t in tokens if t not in NO_OPINION_FILLERS]
    found, i = False, 0
    while i < len(tokens):
        core = next((c for c in _NO_OPINION if tuple(tokens[i : i + len(c)]) == c), None)
        if core is None:
            return False
        found, i = True, i + len(core)
    return found


def _is_blank_answer(comment: str | None) -> bool:
    """Blank, "n/a", "nothing", "none", "nothing to add" ...: says nothing, the score speaks."""
    if comment is None:
        return True
    text = _EMPTY_STRIP.sub(" ", comment.lower().replace("n/a", "na")).split()
    return not text or " ".join(text) in EMPTY_ANSWERS


def is_empty_answer(comment: str | None) -> bool:
    """Blank, "n/a", "nothing", "none", "no comment", "not sure" ... carry no themes."""
    return _is_blank_answer(comment) or is_no_opinion_answer(comment)


def drop_passing_mentions(evidence: Sequence[float], theme_ids: Sequence[str] = ()) -> list[float]:
    """Each theme's evidence as the built-in model decides on it, 0 where it is a passing
    mention (``PASSING_SHARE``; for the themes of ``PASSING_FULL_SHARE``, named in ``theme_ids``
    in the order of ``evidence``, one full-weight term too). The analysis keeps the evidence
    itself: trained models read it as a feature, and dropping it there lost airline recall at
    k = 300. "The nurses were lovely, kind and patient, they listened and were so helpful, and
    they helped me" is about the staff; the weak product-quality reading of "they helped me"
    says little there, where alone ("They helped me.") it is all the comment says. Likewise
    "Lovely staff, so kind and caring, and the phone was answered quickly" is about the staff."""
    top = max(evidence, default=0.0)
    cut = top * PASSING_SHARE
    kept = [0.0 if e < WEAK_EVIDENCE and e < cut else e for e in evidence]
    for i, theme_id in enumerate(theme_ids):
        share = PASSING_FULL_SHARE.get(theme_id)
        if share is not None and kept[i] < FULL_EVIDENCE and kept[i] < top * share:
            kept[i] = 0.0
    return kept


def themes_fingerprint(themes: list[ThemeDefinition]) -> str:
    payload = json.dumps([t.model_dump() for t in themes], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:8]


class BuiltinClassifier:
    """Lexicon + zero-shot themes, lexicon sentiment with the score as context."""

    prepares_batches = False

    def __init__(self, themes: list[ThemeDefinition] | None = None) -> None:
        self.themes = validate_taxonomy(themes if themes is not None else DEFAULT_THEMES)
        self.theme_ids = tuple(t.id for t in self.themes)
        self.matcher = ThemeMatcher.build(self.themes)
        fingerprint = themes_fingerprint(self.themes)
        default = fingerprint == themes_fingerprint(DEFAULT_THEMES)
        self.version = BUILTIN_VERSION if default else f"{BUILTIN_VERSION}+themes.{fingerprint}"
        self._english = _ENGLISH_STEMS | frozenset(self.matcher.index)

    def analyse(self, comment: str | None, language: str | None = None) -> Analysis:
        """``language``: already detected for the text ``comment`` is part of (a sentence of a
        longer comment), so not detected again."""
        tokens = raw_tokens(comment) if comment else []  # once: every reading below uses them
        no_opinion = is_no_opinion_answer(comment, tokens)
        if no_opinion or _is_blank_answer(comment):
            lang = "und"
            if comment and comment.strip():
                lang = detect_language(comment, tokens, 1)
            return Analysis(True, lang, (), (0.0,) * len(self.theme_ids), 0.0, 0.0, 0, no_opinion=no_opinion)
        assert comment is not None
        stems = comment_stems(tokens)
        if language is None:
            word_tokens = [t for t in tokens if not is_punct(t)]
            english = sum(1 for s in stems if s in self._english)
            language = detect_language(comment, word_tokens, english)
        if language not in SUPPORTED and language != "und":
            return Analysis(False, language, tuple(stems), (0.0,) * len(self.theme_ids), 0.0, 0.0, 0)
        evidence = lexical_evidence(tokens)
        themes = self.matcher.evidence(stems, denied_requests(tokens), SUGGESTIONS, tokens)
        return Analysis(
            False, language, tuple(stems), tuple(themes), evidence.positive, evidence.negative, evidence.suggestions
        )

    def theme_terms(self, comment: str | None, analysis: Analysis) -> dict[tuple[int, Key], float]:
        """(theme index, term) -> weight of the lexicon terms that count in an analysed comment."""
        if analysis.unread or not analysis.stems or not comment:
            return {}
        tokens = raw_tokens(comment)
        return self.matcher.matched_terms(list(analysis.stems), denied_requests(tokens), SUGGESTIONS, tokens)

    def with_term_factors(self, factors: Mapping[str, Mapping[Key, float]]) -> BuiltinClassifier:
        """This model with its theme terms re-weighted (``ThemeMatcher.with_factors``): how a
        trained model reads the built-in vocabulary its organisation's labels disagree with."""
        if not factors:
            return self
        clone = copy.copy(self)
        clone.matcher = self.matcher.with_factors(factors)
        return clone

    def prepare(self, comments: Sequence[str | None]) -> None:
        """Nothing to do ahead: reading a comment needs no model to run."""

    def classify(self, comment: str | None, score: int | None) -> Classification:
        category = category_for_score(score)
        analysis = self.analyse(comment)
        return self.from_analysis(analysis, category, score)

    def from_analysis(self, analysis: Analysis, category: str | None, score: int | None) -> Classification:
        if analysis.unread:
            label, value = self.sentiment_of(analysis, score)
            return Classification(category, (), label, value, analysis.language, self.version)
        themes = []
        for theme_id, total in zip(self.theme_ids, drop_passing_mentions(analysis.theme_evidence, self.theme_ids)):
            if total > 0:
                confidence = round(1.0 - math.exp(-total), 4)
                if confidence >= 0.5:
                    themes.append(ThemeScore(theme_id, confidence))
        themes.sort(key=lambda t: (-t.confidence, t.id))
        label, value = self.sentiment_of(analysis, score)
        return Classification(category, tuple(themes), label, value, analysis.language, self.version)

    @staticmethod
    def sentiment_of(analysis: Analysis, score: int | None) -> tuple[str, float]:
        """The built-in sentiment (label, -1..1) of an analysed comment, with the score as context."""
        if analysis.no_opinion:
            return "neutral", 0.0  # the respondent gave no view; the score alone does not make one
        if analysis.unread:
            return sentiment_from(None, score)
        evidence = LexicalEvidence(analysis.positive, analysis.negative, analysis.suggestions, 0)
        return sentiment_from(evidence, score)
