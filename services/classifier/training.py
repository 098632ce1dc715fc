"""Training: the organisation's own theme and sentiment heads, fitted on its labelled comments.

Warm-started theme heads begin at the built-in decision and are regularised towards it, so a
few labels move them only where they disagree with the lexicon; ``stacking`` fits the free
heads beside them and ``sentiment_head`` the sentiment. Deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from npsloop.services.classifier import static_vectors
from npsloop.services.classifier.calibration import TRUST_AT, calibrate_theme, sigmoid
from npsloop.services.classifier.embeddings import Encoder
from npsloop.services.classifier.features import Features, comment_features
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.sentiment_head import MIN_EXAMPLES as SENTIMENT_MIN_EXAMPLES
from npsloop.services.classifier.sentiment_head import SENTIMENTS, fit_sentiment
from npsloop.services.classifier.stacking import DENSE_SCALE, fit_stack
from npsloop.services.classifier.stored_model import SentenceReading, TrainedModel, TrainingSummary
from npsloop.shared.taxonomy import ThemeDefinition

LEX_WARM = 1.5  # sigmoid(1.5 * evidence - 1.04) = 0.5 at evidence 0.69, the built-in threshold
BIAS_WARM = -1.04
EPOCHS = 15
RATE = 0.05
L2 = 0.1
POS_CAP = 3.0
# A sentence of a longer comment names a theme on its own where its decision reaches this
# (``trained.TrainedClassifier``); docs/decisions/classifier.md says how it was chosen.
SENTENCE_THRESHOLD = 0.6


@dataclass(frozen=True)
class LabelledExample:
    comment: str
    score: int | None = None
    themes: list[str] | None = None  # None = not labelled for themes
    sentiment: str | None = None  # None = not labelled for sentiment


def _fit_binary(
    data: list[tuple[Features, int]],
    warm: dict[str, float],
    *,
    epochs: int | None = None,
    rate: float | None = None,
    l2: float | None = None,
) -> dict[str, float]:
    """Logistic regression by AdaGrad, L2 towards the warm start; deterministic."""
    epochs = EPOCHS if epochs is None else epochs
    rate = RATE if rate is None else rate
    l2 = L2 if l2 is None else l2
    weights = dict(warm)
    grad_sq: dict[str, float] = {}
    positives = sum(label for _, label in data) or 1
    negatives = (len(data) - positives) or 1
    pos_weight = min(POS_CAP, max(1.0, math.sqrt(negatives / positives)))
    for _ in range(epochs):
        for feats, label in data:
            z = weights.get("", 0.0) + sum(weights.get(f, 0.0) * v for f, v in feats.items())
            g = sigmoid(z) - label
            if label:
                g *= pos_weight
            for f, v in (*feats.items(), ("", 1.0)):
                w = weights.get(f, 0.0)
                grad = g * v + l2 * (w - warm.get(f, 0.0))
                acc = grad_sq.get(f, 1e-6) + grad * grad
                grad_sq[f] = acc
                weights[f] = w - rate * grad / math.sqrt(acc)
    return {f: round(w, 5) for f, w in weights.items() if abs(w - warm.get(f, 0.0)) > 1e-4 or f in warm}


def train(
    examples: Iterable[LabelledExample],
    *,
    themes: list[ThemeDefinition] | None = None,
    base: BuiltinClassifier,
    encoder: Encoder | None = None,
) -> TrainedModel:
    """Fit theme and sentiment heads on labelled examples.

    The stacked theme heads and the sentiment head also read each comment's vector from
    ``encoder``: by default the static word vectors every install has (``static_vectors``);
    with the ml extra, MiniLM's sentence embedding. The model then needs that encoder wherever
    it is applied."""
    dense_encoder: Encoder = encoder if encoder is not None else static_vectors.load()
    theme_ids = tuple(t.id for t in themes) if themes is not None else base.theme_ids
    theme_data: list[tuple[Features, set[str]]] = []
    theme_evidence: list[tuple[float, ...]] = []
    theme_comments: list[str] = []
    sentiment_feats: list[Features] = []
    sentiment_comments: list[str] = []
    sentiment_builtin: list[tuple[str, float]] = []
    sentiment_gold: list[str] = []
    for example in examples:
        analysis = base.analyse(example.comment)
        feats = comment_features(analysis, example.score, base.theme_ids)
        if example.themes is not None and not analysis.empty:
            theme_data.append((feats, set(example.themes)))
            theme_evidence.append(analysis.theme_evidence)
            theme_comments.append(example.comment)
        # Empty answers included: whether "Nothing." beside a 10 is praise is this organisation's
        # call (asked "what could we improve?", it is). A language the lexicon cannot read is not.
        if example.sentiment in SENTIMENTS and (analysis.empty or not analysis.unread):
            sentiment_feats.append(feats)
            sentiment_comments.append(example.comment)
            sentiment_builtin.append(base.sentiment_of(analysis, example.score))
            sentiment_gold.append(example.sentiment)
    heads: dict[str, dict[str, float]] = {}
    summary = TrainingSummary(theme_examples=len(theme_data), sentiment_examples=len(sentiment_gold))
    for theme_id in theme_ids:
        labelled = [(feats, int(theme_id in gold)) for feats, gold in theme_data]
        if sum(label for _, label in labelled) < 2:
            continue  # nothing to learn from: keep the built-in zero-shot for this theme
        warm = {"": BIAS_WARM, "lex:" + theme_id: LEX_WARM}
        keep, threshold = calibrate_theme(labelled, theme_id, partial(_fit_binary, warm=warm), trust_at=TRUST_AT)
        if not keep:
            summary.kept_builtin.append(theme_id)  # its labels did not beat the zero-shot reading
            continue
        summary.theme_positives[theme_id] = sum(label for _, label in labelled)
        summary.thresholds[theme_id] = threshold
        heads[theme_id] = _fit_binary(labelled, warm)
    theme_stack = None
    if theme_data:
        theme_stack = fit_stack(
            [f for f, _ in theme_data],
            theme_comments,
            [g for _, g in theme_data],
            theme_evidence,
            list(base.theme_ids),
            dense=dense_encoder.encode(theme_comments),
            encoder=dense_encoder.name,
            dense_scale=getattr(dense_encoder, "scale", DENSE_SCALE),
        )
        theme_stack.theme_ids = [t for t in base.theme_ids if t in theme_ids]
        if dense_encoder.name == static_vectors.NAME:
            # MiniLM (--embeddings) would encode every sentence again, and what reading
            # sentences does to that model is not measured: it reads whole comments.
            theme_stack.sentences = SentenceReading(threshold=SENTENCE_THRESHOLD)
        summary.stack_threshold = theme_stack.threshold
        summary.embeddings = dense_encoder.name
    # Encoding is the costly part with MiniLM: only where a head will be fitted.
    sentiment_dense = (
        dense_encoder.encode(sentiment_comments) if len(sentiment_gold) >= SENTIMENT_MIN_EXAMPLES else None
    )
    sentiment_stack = fit_sentiment(
        sentiment_feats,
        sentiment_comments,
        sentiment_builtin,
        sentiment_gold,
        dense=sentiment_dense,
        encoder=dense_encoder.name,
    )
    if sentiment_stack is not None:
        summary.sentiment_blend = sentiment_stack.blend
    return TrainedModel(
        base_version=base.version,
        theme_ids=list(theme_ids),
        trained_on=summary,
        theme_heads=heads,
        theme_stack=theme_stack,
        sentiment_stack=sentiment_stack,
    )
