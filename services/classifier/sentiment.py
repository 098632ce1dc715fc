"""Lexicon sentiment with negation, intensifiers and contrast, combined with the score.

The comment is read first; the score is context: it sets the prior (a 10 with "nothing to
add" is positive, a 5 with "fine" is neutral) and the comment moves it. Comments that
both praise and complain ("mixed") are pulled towards neutral deliberately.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .lexicon import REQUEST_START, CONTRAST, INTENSIFIERS, NEGATIVE, POSITIVE, SUGGESTION
from .text import SENTENCE_BREAK, is_punct, negation_flags, stem


def _parse_polar(spec: str, sign: float) -> dict[tuple[str, ...], float]:
    """``"word:1.2 two words:0.8 ..."`` -> {stemmed words: signed weight}."""
    return {
        tuple(stem(w) for w in phrase.split()): sign * float(weight)
        for phrase, weight in re.findall(r"([a-z][a-z' ]*?)\s*:\s*([0-9.]+)", spec)
    }


def _phrase_entries(spec: str) -> set[tuple[str, ...]]:
    return {tuple(stem(w) for w in p.split()) for p in spec.replace("\n", " ").split(",") if p.strip()}


POLARITY: dict[tuple[str, ...], float] = {**_parse_polar(POSITIVE, 1.0), **_parse_polar(NEGATIVE, -1.0)}
SUGGESTIONS = _phrase_entries(SUGGESTION)
_REQUEST_START = frozenset(stem(w) for w in REQUEST_START.split())
_SUGGESTION_FIRST = frozenset(k[0] for k in SUGGESTIONS)
_MAX_N = max(len(k) for k in (*POLARITY, *SUGGESTIONS))
_INTENS = {stem(k): v for k, v in INTENSIFIERS.items()}
_CONTRAST = frozenset(stem(w) for w in CONTRAST)


@dataclass(frozen=True)
class LexicalEvidence:
    positive: float
    negative: float
    suggestions: float
    words: int


def lexical_evidence(tokens: list[str]) -> LexicalEvidence:
    """Positive and negative weight in ``tokens`` (raw tokens incl. punctuation)."""
    negated = negation_flags(tokens)
    stems = [stem(t) if not is_punct(t) else t for t in tokens]
    n = len(stems)
    # Clause weights: in a sentence with a contrast word, what follows counts more.
    weights = [1.0] * n
    sent_start = 0
    for i in range(n + 1):
        if i == n or stems[i] in SENTENCE_BREAK:
            last_contrast = -1
            for j in range(sent_start, i):
                if stems[j] in _CONTRAST:
                    last_contrast = j
            if last_contrast >= 0:
                for j in range(sent_start, i):
                    weights[j] = 0.75 if j < last_contrast else 1.25
            sent_start = i + 1
    pos = neg = 0.0
    suggestions = 0
    words = 0
    i = 0
    while i < n:
        s = stems[i]
        if is_punct(s):
            i += 1
            continue
        words += 1
        at_start = i == 0 or stems[i - 1] in SENTENCE_BREAK or stems[i - 1] in ("\n", ",")
        if at_start and s in _REQUEST_START and not (i + 1 < n and stems[i + 1] in ("than", "and")):
            suggestions += 1  # "More staff.", "Better parking", "Listen to patients"
        elif s in ("more", "less", "fewer", "better") and i + 1 < n and not is_punct(stems[i + 1]) \
                and stems[i + 1] not in ("than", "and", "so", "to") and not at_start:
            suggestions += 0.5 if stems[i - 1] not in ("need", "want", "would", "should", "could") else 1
        matched = 0
        top = min(_MAX_N, n - i)
        if s in _SUGGESTION_FIRST and any(tuple(stems[i : i + k]) in SUGGESTIONS for k in range(1, top + 1)):
            suggestions += 1
        if s == "too" and i + 1 < n and not is_punct(stems[i + 1]) and stems[i + 1] not in _CONTRAST:
            neg += 0.7 * weights[i]  # "too slow", "too expensive", "too few"
        for size in range(top, 0, -1):
            key = tuple(stems[i : i + size])
            value = POLARITY.get(key)
            if value is not None:
                if i > 0 and stems[i - 1] in _INTENS:
                    value *= _INTENS[stems[i - 1]]
                if negated[i] and size == 1:
                    # "not good" is negative, "not slow" is mildly positive.
                    value = -value * (0.8 if value > 0 else 0.5)
                value *= weights[i]
                if value > 0:
                    pos += value
                else:
                    neg -= value
                matched = size
                break
        i += max(matched, 1)
    return LexicalEvidence(pos, neg, suggestions, words)


def score_prior(score: int | None) -> float:
    """What the 0-10 score alone says about sentiment, in -1..1."""
    if score is None:
        return 0.0
    return (-0.9, -0.85, -0.8, -0.7, -0.6, -0.35, -0.15, 0.1, 0.35, 0.55, 0.7)[max(0, min(10, score))]


@dataclass(frozen=True)
class SentimentParams:
    lex_scale: float = 0.45
    suggestion_weight: float = 1.4
    prior_weight: float = 1.0
    mixed_ratio: float = 0.5
    mixed_min: float = 1.0
    mixed_pull: float = 0.8
    neutral_band: float = 0.2
    bare_prior: float = 0.4  # a comment with no evaluative words leans less on the score


DEFAULT_PARAMS = SentimentParams()


def sentiment_from(evidence: LexicalEvidence | None, score: int | None,
                   params: SentimentParams = DEFAULT_PARAMS) -> tuple[str, float]:
    """(label, score in -1..1) from the comment's evidence (None = empty comment) and the score."""
    prior = score_prior(score) * params.prior_weight
    if evidence is None:
        value = prior
    else:
        raw = evidence.positive - evidence.negative - params.suggestion_weight * evidence.suggestions
        if not (evidence.positive or evidence.negative or evidence.suggestions):
            prior *= params.bare_prior
        value = math.tanh(params.lex_scale * raw + prior)
        low, high = sorted((evidence.positive, evidence.negative + evidence.suggestions * 0.5))
        if low >= params.mixed_min and low >= params.mixed_ratio * high:
            value *= params.mixed_pull
    value = max(-1.0, min(1.0, value))
    if value > params.neutral_band:
        return "positive", round(value, 4)
    if value < -params.neutral_band:
        return "negative", round(value, 4)
    return "neutral", round(value, 4)
