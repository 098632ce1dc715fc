"""Which comments teach the classifier most when a person corrects them (the review queue).

Pure functions, no database: the endpoint (``review_queue``), the dashboard's Review view and
``scripts/evaluate_classifier.py --select queue`` rank comments with the same code.

A stored classification keeps only the themes that passed their threshold, so how close a
theme came (the false negatives a correction would fix) is not stored: the queue reads each
comment again with the active classifier, which gives every theme's decision (0.5 = its
threshold) and how far the sentiment was from its other reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from npsloop.services.classifier.features import comment_features, features
from npsloop.services.classifier.model import (
    Analysis,
    BuiltinClassifier,
    Classifier,
    category_for_score,
    drop_passing_mentions,
)
from npsloop.services.classifier.sentiment import DEFAULT_PARAMS
from npsloop.services.classifier.stacking import builtin_confidence
from npsloop.services.classifier.trained import TrainedClassifier

# A theme whose decision is this close to its threshold (0.5) counts as uncertain; decisions
# are 0..1 and most themes of most comments sit at 0.
THEME_BAND = 0.25
# A sentiment whose margin (the built-in value's distance to the neutral band's edge, or a
# trained head's top-two probability gap) is below this counts as uncertain.
SENTIMENT_BAND = 0.25
DISAGREEMENT_WEIGHT = 1.0  # a detractor's comment read as positive, a promoter's as negative
UNTHEMED_DETRACTOR_WEIGHT = 0.5  # a detractor said something and no theme took it: nothing to route


@dataclass(frozen=True)
class Reading:
    """How sure the classifier is of one comment: every theme's decision and the sentiment margin."""

    decisions: dict[str, float]  # theme id -> decision; 0.5 or more means the theme is tagged
    sentiment: str
    sentiment_margin: float  # 0 = on the boundary between two labels


@dataclass(frozen=True)
class ReviewPriority:
    """How much a correction of one comment would teach, and why (largest first)."""

    priority: float
    reasons: tuple[str, ...]
    uncertain_themes: tuple[tuple[str, float], ...]  # (theme id, decision), closest to the threshold first


def _model(classifier: Classifier) -> Classifier:
    """The model behind ``active.ActiveClassifier`` (it holds the current one in ``current``)."""
    return getattr(classifier, "current", classifier)


def _builtin_margin(value: float) -> float:
    return abs(abs(value) - DEFAULT_PARAMS.neutral_band)


def read(classifier: Classifier, comment: str, score: int | None) -> Reading | None:
    """Every theme's decision and the sentiment's margin; None when there is nothing to read
    (an empty or no-opinion answer, a language the lexicons do not cover, or an unknown model)."""
    model = _model(classifier)
    if isinstance(model, TrainedClassifier):
        return _read_trained(model, comment, score)
    if isinstance(model, BuiltinClassifier):
        analysis = model.analyse(comment)
        if analysis.unread or not analysis.stems:
            return None
        evidence = drop_passing_mentions(analysis.theme_evidence, model.theme_ids)
        decisions = {t: builtin_confidence(e) for t, e in zip(model.theme_ids, evidence)}
        label, value = model.sentiment_of(analysis, score)
        return Reading(decisions, label, _builtin_margin(value))
    return None


def _read_trained(model: TrainedClassifier, comment: str, score: int | None) -> Reading | None:
    """What ``TrainedClassifier.classify`` decides, keeping the decisions below threshold too."""
    base = model.base
    analysis: Analysis = base.analyse(comment)
    if analysis.unread or not analysis.stems:
        return None
    feats = features(analysis, score, base.theme_ids)
    dense = model._vector(comment)
    decisions = model._theme_decisions(comment, analysis, feats, dense)
    if model.sentence_threshold is not None:
        model._read_sentences(comment, analysis.language, score, decisions, model.sentence_threshold)
    label, value = base.sentiment_of(analysis, score)
    margin = _builtin_margin(value)
    if model.sentiment is not None:
        probs = model.sentiment.probabilities(
            comment_features(analysis, score, base.theme_ids), comment, label, value, dense, stems=analysis.stems
        )
        ranked = sorted(probs, reverse=True)
        label = ("positive", "neutral", "negative")[max(range(3), key=lambda c: (probs[c], -c))]
        margin = ranked[0] - ranked[1]
    return Reading({t: min(d, 1.0) for t, d in decisions.items()}, label, margin)


def prioritise(reading: Reading, score: int | None) -> ReviewPriority:
    """How much a person's answer would teach: themes near their threshold, a sentiment near
    its boundary, a sentiment against the score, a detractor's comment with no theme.

    The priority adds the closeness (0..1) of the most uncertain theme, half of the next
    ones', the sentiment's closeness and the disagreement weights; 0 = nothing to learn."""
    close = sorted(
        ((t, d, 1.0 - abs(d - 0.5) / THEME_BAND) for t, d in reading.decisions.items() if abs(d - 0.5) < THEME_BAND),
        key=lambda item: (-item[2], item[0]),
    )
    priority = 0.0
    reasons: list[str] = []
    for position, (theme_id, _, closeness) in enumerate(close):
        priority += closeness if position == 0 else closeness / 2
        reasons.append(f"uncertain theme {theme_id}")
    if reading.sentiment_margin < SENTIMENT_BAND:
        priority += 1.0 - reading.sentiment_margin / SENTIMENT_BAND
        reasons.append(f"uncertain sentiment {reading.sentiment}")
    category = category_for_score(score)
    if (category == "detractor" and reading.sentiment == "positive") or (
        category == "promoter" and reading.sentiment == "negative"
    ):
        priority += DISAGREEMENT_WEIGHT
        reasons.insert(0, "sentiment disagrees with score")
    if category == "detractor" and not any(d >= 0.5 for d in reading.decisions.values()):
        priority += UNTHEMED_DETRACTOR_WEIGHT
        reasons.append("no theme in a detractor's comment")
    return ReviewPriority(round(priority, 6), tuple(reasons), tuple((t, round(d, 4)) for t, d, _ in close))


@dataclass(frozen=True)
class Candidate:
    id: str
    comment: str
    score: int | None


def rank(classifier: Classifier, candidates: Sequence[Candidate]) -> list[tuple[Candidate, ReviewPriority]]:
    """``candidates`` that have something to teach, most first (ties: by id, so pages are stable)."""
    ranked = []
    for candidate in candidates:
        reading = read(classifier, candidate.comment, candidate.score)
        if reading is None:
            continue
        priority = prioritise(reading, candidate.score)
        if priority.priority > 0 and math.isfinite(priority.priority):
            ranked.append((candidate, priority))
    ranked.sort(key=lambda item: (-item[1].priority, item[0].id))
    return ranked
