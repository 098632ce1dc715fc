"""Deciding, from the organisation's own labels, where a warm-started theme head beats the built-in model.

Every head is judged on predictions for examples it did not see (deterministic k-fold):
a theme head is kept only when its out-of-fold F1 beats the built-in zero-shot reading
of that theme, with the decision threshold that served it best. This keeps training from
making a theme worse than the zero-shot reading it starts from. (Sentiment is blended with
the built-in reading instead of judged: ``sentiment_head``.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

FOLDS = 3
# Narrow on purpose: fold heads see two thirds of the labels and are less sure than the
# final head, so a threshold far from 0.5 chosen on them would not carry over.
THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.6)
THRESHOLD_GAIN = 0.02  # leave 0.5 only for a clear out-of-fold gain
MIN_POSITIVES_TO_TUNE = 6
TRUST_AT = 200  # positives of a theme at which its fitted head is trusted alone

Features = dict[str, float]
BinaryFit = Callable[[list[tuple[Features, int]]], dict[str, float]]


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def trust_for(positives: int, trust_at: int) -> float:
    """How far a head's own reading is trusted over the built-in one, from its positives."""
    return min(1.0, 0.3 + positives / trust_at)


def theme_confidence(head: dict[str, float], feats: Features, evidence: float, trust: float) -> float:
    """The fitted head's probability blended with the built-in confidence by ``trust``."""
    z = head.get("", 0.0) + sum(head.get(f, 0.0) * v for f, v in feats.items())
    builtin = 1.0 - math.exp(-evidence) if evidence else 0.0
    return trust * sigmoid(z) + (1.0 - trust) * builtin


def _f1(predicted: Sequence[bool], gold: Sequence[int]) -> float:
    tp = sum(1 for p, g in zip(predicted, gold) if p and g)
    fp = sum(1 for p, g in zip(predicted, gold) if p and not g)
    fn = sum(1 for p, g in zip(predicted, gold) if g and not p)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def calibrate_theme(
    labelled: list[tuple[Features, int]], theme_id: str, fit: BinaryFit, *, trust_at: int
) -> tuple[bool, float]:
    """(keep the fitted head?, its threshold) from out-of-fold predictions on ``labelled``."""
    gold = [label for _, label in labelled]
    if sum(gold) < MIN_POSITIVES_TO_TUNE:
        return True, 0.5  # too few to judge: trust the warm-started head as it is
    lex = "lex:" + theme_id
    builtin_f1 = _f1([1.0 - math.exp(-f.get(lex, 0.0)) >= 0.5 for f, _ in labelled], gold)
    confidences = [0.0] * len(labelled)
    for fold in range(FOLDS):
        train = [row for i, row in enumerate(labelled) if i % FOLDS != fold]
        head = fit(train)
        trust = trust_for(sum(label for _, label in train), trust_at)
        for i in range(fold, len(labelled), FOLDS):
            feats = labelled[i][0]
            confidences[i] = theme_confidence(head, feats, feats.get(lex, 0.0), trust)
    at_half = _f1([c >= 0.5 for c in confidences], gold)
    best_f1, best_threshold = max((_f1([c >= t for c in confidences], gold), -abs(t - 0.5), t) for t in THRESHOLDS)[
        0::2
    ]
    if best_f1 < at_half + THRESHOLD_GAIN:
        best_f1, best_threshold = at_half, 0.5
    return best_f1 > builtin_f1, best_threshold
