"""Stacked theme heads: L2 logistic regression on words plus the built-in model's readings.

The warm-started heads of ``training`` move only where the labels disagree with the
lexicon; these heads are fitted freely (scikit-learn, liblinear) on the same features,
with everything that matters chosen by 5-fold cross-validation on the organisation's own
labels, never by hand:

- per theme, the regularisation C and how far to blend the fitted probability with the
  built-in confidence (both by out-of-fold log-loss: smooth, so stable on few labels);
- one decision threshold for all themes: half the out-of-fold micro-F1, which is where a
  calibrated probability maximises F1 (a threshold searched on a grid over a few hundred
  labels jumps between splits; this one does not).

The trained classifier averages these heads with the warm-started ones (each scaled to
its own threshold): on both development sets, over four splits at 300 labels, the average
beat either alone.
Inference is pure Python over the stored weights; scikit-learn is needed to train only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FOLDS = 5
CS = (0.3, 1.0, 3.0, 10.0, 30.0)
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)  # share of the fitted probability against the built-in confidence
MIN_POSITIVES = 3  # fewer: no stacked head, the built-in reading stands
BUILTIN_CLIP = 0.02  # the built-in confidence is 0 or near 1; clipped so log-loss stays finite

Features = dict[str, float]


def builtin_confidence(evidence: float) -> float:
    return 1.0 - math.exp(-evidence) if evidence else 0.0


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _log_loss(probs, gold) -> float:
    import numpy as np

    p = np.clip(probs, 1e-4, 1 - 1e-4)
    return float(-np.mean(gold * np.log(p) + (1 - gold) * np.log(1 - p)))


def _micro_f1(scores, gold, threshold: float) -> float:
    predicted = scores >= threshold
    tp = int((predicted & gold).sum())
    fp = int((predicted & ~gold).sum())
    fn = int((~predicted & gold).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def fit_stack(rows: Sequence[Features], gold: Sequence[set[str]], evidence: Sequence[Sequence[float]],
              theme_ids: Sequence[str]) -> dict:
    """Fit one stacked head per theme; returns the JSON-ready description of all heads."""
    import numpy as np
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    vectoriser = DictVectorizer()
    X = vectoriser.fit_transform(rows).tocsr()
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)  # liblinear takes 32-bit only
    names = vectoriser.get_feature_names_out()
    n = X.shape[0]
    Y = np.array([[t in g for t in theme_ids] for g in gold], dtype=bool).reshape(n, len(theme_ids))
    B = np.array([[builtin_confidence(e) for e in ev] for ev in evidence]).reshape(n, len(theme_ids))
    folds = list(KFold(min(FOLDS, n), shuffle=True, random_state=0).split(np.arange(n))) if n >= 2 else []

    def model(C: float) -> LogisticRegression:
        return LogisticRegression(C=C, solver="liblinear", random_state=0)

    out_of_fold = B.copy()
    plans: dict[str, tuple[float, float]] = {}
    for t, theme_id in enumerate(theme_ids):
        y = Y[:, t].astype(int)
        if y.sum() < MIN_POSITIVES or y.sum() == n:
            continue  # nothing to learn: the built-in reading stands (threshold 0.5)
        builtin = np.clip(B[:, t], BUILTIN_CLIP, 1 - BUILTIN_CLIP)
        best = None
        for C in CS:
            probs = np.zeros(n)
            for train_idx, test_idx in folds:
                if 0 < y[train_idx].sum() < len(train_idx):
                    probs[test_idx] = model(C).fit(X[train_idx], y[train_idx]).predict_proba(X[test_idx])[:, 1]
            for w in BLENDS:
                blended = w * probs + (1 - w) * builtin
                loss = _log_loss(blended, y)
                if best is None or loss < best[0] - 1e-9:
                    best = (loss, C, w, blended)
        assert best is not None
        _, C, w, blended = best
        out_of_fold[:, t] = blended
        plans[theme_id] = (C, w)
    stacked = [t for t, theme_id in enumerate(theme_ids) if theme_id in plans]
    threshold = 0.5
    if stacked:
        scores, labels = out_of_fold[:, stacked], Y[:, stacked]
        for _ in range(3):  # a fixed point: threshold = F1 / 2 at that threshold
            threshold = max(0.05, _micro_f1(scores, labels, threshold) / 2)
    heads: dict[str, dict] = {}
    for theme_id, (C, w) in plans.items():
        head: dict = {"C": C, "blend": w}
        if w > 0:
            fitted = model(C).fit(X, Y[:, theme_ids.index(theme_id)].astype(int))
            head["bias"] = round(float(fitted.intercept_[0]), 5)
            head["weights"] = {str(names[i]): round(float(c), 5) for i, c in enumerate(fitted.coef_[0])
                               if abs(c) >= 1e-4}
        heads[theme_id] = head
    return {"threshold": round(threshold, 4), "heads": heads}


def stacked_confidence(head: dict, feats: Features, evidence: float) -> float:
    """The stacked head's probability (blended with the built-in confidence as fitted)."""
    builtin = min(max(builtin_confidence(evidence), BUILTIN_CLIP), 1 - BUILTIN_CLIP)
    w = head.get("blend", 0.0)
    if not w:
        return builtin
    weights = head["weights"]
    z = head.get("bias", 0.0) + sum(weights.get(f, 0.0) * v for f, v in feats.items())
    return w * _sigmoid(z) + (1 - w) * builtin
