"""Training: the organisation's own theme and sentiment heads, fitted on its labelled comments.

Warm-started theme heads begin at the built-in decision and are regularised towards it, so a
few labels move them only where they disagree with the lexicon; ``stacking`` fits the free
heads beside them and ``sentiment_head`` the sentiment. Deterministic.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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
from npsloop.services.classifier.text import Key
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
# The organisation's labels judge the built-in vocabulary (``fit_term_factors``): a theme term
# found in at least TERM_MIN_HITS labelled comments whose smoothed precision (TERM_PRIOR
# pseudo-counts each side) falls below a cut is dropped from that theme's reading. Which cut,
# if any, is chosen by cross-validation on the labels (TERM_FOLDS folds).
TERM_MIN_HITS = 3
TERM_PRIOR = 1.0
TERM_CUTS = (0.15, 0.25, 0.35)
TERM_FOLDS = 3
TERM_MIN_POSITIVES = 3  # a theme with fewer labelled positives keeps its vocabulary as it is

TermHits = Mapping[tuple[int, Key], float]  # (theme index, term) -> weight, as ThemeMatcher finds them
TermFactors = dict[str, dict[Key, float]]


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


def _term_factors(
    hits: Sequence[TermHits], golds: Sequence[set[str]], theme_ids: Sequence[str], judged: set[str], cut: float
) -> TermFactors:
    """Factor 0 for each term of a judged theme whose labelled comments mostly lack the theme."""
    counts: dict[tuple[int, Key], list[int]] = defaultdict(lambda: [0, 0])
    for terms, gold in zip(hits, golds):
        for t_idx, key in terms:
            if theme_ids[t_idx] in judged:
                count = counts[(t_idx, key)]
                count[0] += 1
                count[1] += theme_ids[t_idx] in gold
    factors: TermFactors = {}
    for (t_idx, key), (n, positives) in counts.items():
        if n >= TERM_MIN_HITS and (positives + TERM_PRIOR) / (n + 2 * TERM_PRIOR) < cut:
            factors.setdefault(theme_ids[t_idx], {})[key] = 0.0
    return factors


def _builtin_counts(
    hits: Sequence[TermHits],
    golds: Sequence[set[str]],
    theme_ids: Sequence[str],
    judged: set[str],
    factors: TermFactors,
) -> tuple[int, int, int]:
    """(tp, fp, fn) over the judged themes of the built-in reading with ``factors`` applied."""
    tp = fp = fn = 0
    for terms, gold in zip(hits, golds):
        totals: dict[int, float] = defaultdict(float)
        for (t_idx, key), weight in terms.items():
            totals[t_idx] += weight * factors.get(theme_ids[t_idx], {}).get(key, 1.0)
        predicted = {theme_ids[t] for t, v in totals.items() if 1.0 - math.exp(-v) >= 0.5} & judged
        tp += len(predicted & gold)
        fp += len(predicted - gold)
        fn += len((gold & judged) - predicted)
    return tp, fp, fn


def fit_term_factors(hits: Sequence[TermHits], golds: Sequence[set[str]], theme_ids: Sequence[str]) -> TermFactors:
    """Where the organisation's labels override the built-in vocabulary.

    ``hits``: per labelled comment, the theme terms the built-in model found in it; ``golds``:
    its labelled themes. A term whose comments mostly lack its theme ("stock" where stock is
    what the organisation sells, not delivery) stops counting for that theme. Whether to drop
    any, and at which precision, is decided by cross-validation: factors fitted on all folds
    but one must beat the untouched vocabulary on the one left out (micro-F1, pooled)."""
    positives: dict[str, int] = defaultdict(int)
    for gold in golds:
        for theme_id in gold:
            positives[theme_id] += 1
    judged = {t for t in theme_ids if positives[t] >= TERM_MIN_POSITIVES}
    if not judged or len(hits) < TERM_FOLDS * TERM_MIN_HITS:
        return {}

    def f1(counts: tuple[int, int, int]) -> float:
        tp, fp, fn = counts
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    untouched = f1(_builtin_counts(hits, golds, theme_ids, judged, {}))
    best_f1, best_cut = untouched, None
    for cut in TERM_CUTS:
        total = [0, 0, 0]
        for fold in range(TERM_FOLDS):
            fit = [i for i in range(len(hits)) if i % TERM_FOLDS != fold]
            held = [i for i in range(len(hits)) if i % TERM_FOLDS == fold]
            factors = _term_factors([hits[i] for i in fit], [golds[i] for i in fit], theme_ids, judged, cut)
            counts = _builtin_counts([hits[i] for i in held], [golds[i] for i in held], theme_ids, judged, factors)
            total = [a + b for a, b in zip(total, counts)]
        score = f1((total[0], total[1], total[2]))
        if score > best_f1 + 1e-9:
            best_f1, best_cut = score, cut
    return {} if best_cut is None else _term_factors(hits, golds, theme_ids, judged, best_cut)


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
    examples = list(examples)
    # First the labels judge the built-in vocabulary; every head below reads the result.
    hits, golds = [], []
    for example in examples:
        if example.themes is not None:
            analysis = base.analyse(example.comment)
            if not analysis.empty:
                hits.append(base.theme_terms(example.comment, analysis))
                golds.append(set(example.themes) & set(theme_ids))
    term_factors = fit_term_factors(hits, golds, base.theme_ids)
    base = base.with_term_factors(term_factors)
    theme_data: list[tuple[Features, set[str]]] = []
    theme_evidence: list[tuple[float, ...]] = []
    theme_comments: list[str] = []
    sentiment_feats: list[Features] = []
    sentiment_comments: list[str] = []
    sentiment_stems: list[tuple[str, ...]] = []
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
            sentiment_stems.append(analysis.stems)
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
        sentiment_stems,
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
        term_factors={t: {" ".join(key): f for key, f in terms.items()} for t, terms in term_factors.items()},
    )
