"""How well a classifier does on labelled comments, and whether training on them pays.

``score`` counts per-theme precision and recall, theme micro-F1 and sentiment 3-class
macro-F1 from (labelled example, classification) pairs; ``scripts/evaluate_classifier.py``
and ``npsloop classifier evaluate`` both report through it. ``cross_validate`` answers the
question a team asks before trusting its trained model: split the organisation's own
labels into folds, train on all folds but one, classify the one left out with the trained
and the built-in model, and score all held-out predictions pooled (one figure over every
label, not a mean of small folds' figures).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from npsloop.services.classifier.model import BuiltinClassifier, Classification, Classifier
from npsloop.services.classifier.sentiment_head import SENTIMENTS
from npsloop.services.classifier.trained import TrainedClassifier
from npsloop.services.classifier.training import LabelledExample, train

MIN_FOLDS, MAX_FOLDS = 2, 20
MIN_PER_FOLD = 5  # fewer labelled comments per fold than this and the figures are noise


class Labelled(Protocol):
    """A labelled comment: ``themes`` None (or ``sentiment`` None) = not labelled for it."""

    @property
    def comment(self) -> str: ...

    @property
    def score(self) -> int | None: ...

    @property
    def themes(self) -> Collection[str] | None: ...

    @property
    def sentiment(self) -> str | None: ...


@dataclass(frozen=True)
class Scores:
    per_theme: dict[str, tuple[float, float, int]]  # theme -> (precision, recall, labelled positives)
    micro_f1: float | None  # None: no comment was labelled for themes
    sentiment_macro_f1: float | None  # None: no comment was labelled for sentiment
    confusion: Counter[tuple[str, str]]  # (gold sentiment, predicted) -> count
    n: int
    rate: float = 0.0  # comments classified per CPU second, where measured

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "theme_micro_f1": self.micro_f1,
            "sentiment_macro_f1": self.sentiment_macro_f1,
            "themes": {t: {"precision": p, "recall": r, "support": s} for t, (p, r, s) in self.per_theme.items()},
        }


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def score(pairs: Sequence[tuple[Labelled, Classification]], themes: Sequence[str], *, rate: float = 0.0) -> Scores:
    """Figures over ``themes`` (predicted themes outside them are ignored). A comment counts
    for themes only where it is labelled for themes, for sentiment only where it is labelled
    for sentiment."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    scored = set(themes)
    theme_labelled = 0
    for example, result in pairs:
        if example.themes is not None:
            theme_labelled += 1
            gold = set(example.themes) & scored
            predicted = {t.id for t in result.themes} & scored
            for theme in predicted & gold:
                tp[theme] += 1
            for theme in predicted - gold:
                fp[theme] += 1
            for theme in gold - predicted:
                fn[theme] += 1
        if example.sentiment:
            confusion[(example.sentiment, result.sentiment)] += 1
    per_theme = {}
    for theme in themes:
        predicted_count, gold_count = tp[theme] + fp[theme], tp[theme] + fn[theme]
        per_theme[theme] = (
            tp[theme] / predicted_count if predicted_count else 0.0,
            tp[theme] / gold_count if gold_count else 0.0,
            gold_count,
        )
    micro = _f1(sum(tp.values()), sum(fp.values()), sum(fn.values())) if theme_labelled else None
    sentiment = None
    if confusion:
        per_class = []
        for label in SENTIMENTS:
            right = confusion[(label, label)]
            predicted_count = sum(v for (_, p), v in confusion.items() if p == label)
            gold_count = sum(v for (g, _), v in confusion.items() if g == label)
            per_class.append(2 * right / (predicted_count + gold_count) if predicted_count + gold_count else 0.0)
        sentiment = sum(per_class) / len(per_class)
    return Scores(per_theme, micro, sentiment, confusion, len(pairs), rate)


def classify_all(classifier: Classifier, examples: Sequence[Labelled]) -> tuple[list[Classification], float]:
    """Every example's classification, and comments per CPU second (batches prepared first,
    as the classifier service does)."""
    start = time.process_time()
    if classifier.prepares_batches:
        classifier.prepare([e.comment for e in examples])
    results = [classifier.classify(e.comment, e.score) for e in examples]
    return results, len(examples) / max(time.process_time() - start, 1e-9)


def evaluate(classifier: Classifier, examples: Sequence[Labelled], themes: Sequence[str]) -> Scores:
    results, rate = classify_all(classifier, examples)
    return score(list(zip(examples, results)), themes, rate=rate)


@dataclass(frozen=True)
class CrossValidation:
    builtin: Scores
    trained: Scores
    folds: int


def check_folds(n: int, folds: int) -> None:
    """Raise ValueError with the reason when ``n`` labelled comments cannot make ``folds`` folds."""
    if not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise ValueError(f"folds must be between {MIN_FOLDS} and {MAX_FOLDS}, got {folds}")
    if n < folds * MIN_PER_FOLD:
        raise ValueError(
            f"{n} labelled comments are too few to cross-validate: {folds} folds need at least "
            f"{folds * MIN_PER_FOLD} ({MIN_PER_FOLD} per fold)"
        )


def cross_validate(
    examples: Sequence[LabelledExample],
    *,
    base: BuiltinClassifier,
    folds: int = 5,
    seed: int = 0,
    progress: Callable[[int, int, int, float], None] | None = None,
) -> CrossValidation:
    """Out-of-fold figures of the trained model against the built-in one on the same comments.

    The examples are shuffled once (``seed``) and dealt into ``folds`` folds; each fold is
    classified by a model trained on the others exactly as ``classifier train`` trains.
    ``progress(fold, folds, trained_on, seconds)`` is called after each fold."""
    check_folds(len(examples), folds)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    trained_results: dict[int, Classification] = {}
    for fold in range(folds):
        started = time.monotonic()
        held_out = order[fold::folds]
        kept = set(held_out)
        model = train([examples[i] for i in order if i not in kept], themes=base.themes, base=base)
        classifier = TrainedClassifier(model, base)
        results, _ = classify_all(classifier, [examples[i] for i in held_out])
        trained_results.update(zip(held_out, results))
        if progress is not None:
            progress(fold + 1, folds, len(examples) - len(held_out), time.monotonic() - started)
    builtin_results, _ = classify_all(base, examples)
    themes = base.theme_ids
    return CrossValidation(
        score(list(zip(examples, builtin_results)), themes),
        score([(examples[i], trained_results[i]) for i in range(len(examples))], themes),
        folds,
    )
