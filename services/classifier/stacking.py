"""Stacked theme heads: L2 logistic regressions fitted freely on a comment's words, character
n-grams, the built-in model's readings and the comment's vector (``static_vectors``, or MiniLM's
with ``--embeddings``). They learn what the lexicon cannot know; the built-in confidence is
blended in, and C, that blend and the threshold are chosen by cross-validation on the
organisation's own labels, never by hand. scikit-learn to train; numpy alone to apply.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from npsloop.services.classifier.stored_model import DenseBlock, StackedHead, ThemeStack

FOLDS = 5
# Cross-validation repeated over differently shuffled folds, out-of-fold probabilities averaged:
# with a single split, one label more or less flipped C, blend and threshold.
CV_REPEATS = 3
CS = (3.0, 10.0)  # a wider grid chose these almost always, at a fit per value per fold
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)  # share of the fitted probability against the built-in confidence
MIN_POSITIVES = 3  # fewer: no stacked head, the built-in reading stands
BUILTIN_CLIP = 0.02  # the built-in confidence is 0 or near 1; clipped so log-loss stays finite
CHAR_RANGE = (4, 5)  # character n-grams within words: spelling variants, typos, compounds
# A character n-gram seen in one training comment only is dropped: as good, and the model is
# half the size and quicker to fit and to apply.
MIN_DF = {"word": 1, "char": 2}
WEIGHT_DIGITS = 4
BLOCKS = ("word", "char")
NB_SMOOTHING = 0.5  # added to each side's feature mass in ``nb_ratios``
CHAR_CACHE = 50_000  # words whose scores a loaded model remembers (then it starts afresh)
DENSE_SCALE = 3.0  # the comment vector's length against the unit-length word and character blocks

Features = dict[str, float]


def builtin_confidence(evidence: float) -> float:
    return 1.0 - math.exp(-evidence) if evidence else 0.0


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def word_terms(feats: Features) -> list[str]:
    """The word block: stems and bigrams already read by ``features.features``."""
    return [f for f in feats if f[:2] in ("w:", "b:")]


def word_grams(word: str) -> list[str]:
    """A word's character n-grams, the word padded with a space each side."""
    low, high = CHAR_RANGE
    padded = f" {word} "
    size = len(padded)
    return [padded[i : i + n] for n in range(low, min(high, size) + 1) for i in range(size - n + 1)]


def char_terms(comment: str) -> Counter:
    """Character n-grams inside each whitespace-separated word (lower case), with counts."""
    return Counter(g for word in comment.lower().split() for g in word_grams(word))


def meta_features(feats: Features, evidence: Sequence[float], theme_ids: Sequence[str]) -> Features:
    """The built-in model's readings, each on a 0-1 (prior: -1..1) scale like the text blocks."""
    meta = {"lex:" + t: builtin_confidence(e) for t, e in zip(theme_ids, evidence) if e}
    for name, scale in (("pos", 3.0), ("neg", 3.0), ("sug", 3.0)):  # stored as min(x, 6) / 2, min(x, 3)
        if feats.get(name):
            meta[name] = feats[name] / scale
    if feats.get("prior"):
        meta["prior"] = feats["prior"]
    meta.update({f: v for f, v in feats.items() if f.startswith("cat:")})
    return meta


def add_dense_block(
    inputs: Sequence[dict[str, float]], dense: Sequence[Sequence[float]], encoder: str | None, scale: float
) -> DenseBlock:
    """Each row's vector times ``scale`` as its ``dense|i`` features (the theme stack's and the
    sentiment head's inputs alike); returns the block's stored description."""
    if len(dense) != len(inputs) or not encoder:
        raise ValueError("a dense block needs one vector per row and the encoder's name")
    for merged, vector in zip(inputs, dense):
        merged.update({f"dense|{i}": scale * float(v) for i, v in enumerate(vector)})
    return DenseBlock(encoder=encoder, dimension=len(dense[0]) if dense else 0, scale=scale)


def _tfidf_rows(rows: Sequence[Mapping[str, float]], idf: dict[str, float]) -> list[dict[str, float]]:
    """Binary word rows times idf, each to unit length."""
    out = []
    for row in rows:
        weighted = {t: v * idf[t] for t, v in row.items() if t in idf}
        norm = math.sqrt(sum(v * v for v in weighted.values())) or 1.0
        out.append({t: v / norm for t, v in weighted.items()})
    return out


def _word_char_parts(word: str, idf: dict[str, float]) -> dict[str, float]:
    """One word's known n-grams, count times idf."""
    return {g: c * idf[g] for g, c in Counter(word_grams(word)).items() if g in idf}


def _char_row(comment: str, idf: dict[str, float]) -> dict[str, float]:
    """The character block of one comment (see the module's docstring); what inference computes."""
    out: dict[str, float] = {}
    energy = 0.0
    for word in comment.lower().split():
        for g, v in _word_char_parts(word, idf).items():
            out[g] = out.get(g, 0.0) + v
            energy += v * v
    scale = 1.0 / math.sqrt(energy) if energy else 0.0
    return {g: v * scale for g, v in out.items()}


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


def nb_ratios(X, y, text_columns, smoothing: float = NB_SMOOTHING):
    """How strongly each text feature leans to one side of a theme: |log| of its share of the
    positives' feature mass over its share of the negatives' (Wang & Manning's NBSVM), scaled to
    mean 1 over the text columns so that C keeps its meaning. Meta features keep scale 1."""
    import numpy as np

    positives = np.asarray(X.T @ (y == 1).astype(float)).ravel()  # sums by product: no slicing of X
    negatives = np.asarray(X.sum(axis=0)).ravel() - positives
    pos, neg = positives[text_columns] + smoothing, negatives[text_columns] + smoothing
    ratio = np.abs(np.log((pos / pos.sum()) / (neg / neg.sum())))
    scale = np.ones(X.shape[1])
    scale[text_columns] = ratio / (ratio.mean() or 1.0)
    return scale


def positive_weight(y) -> dict[int, float]:
    """Class weights that give a theme's positives as much weight in all as its negatives.

    A theme is in a tenth of comments or fewer: unweighted, an L2 fit buys its low loss by
    leaning to "no". The skew this puts in the probability is corrected where the blend and
    the threshold are chosen on the out-of-fold probabilities."""
    positives = int(sum(y))
    return {0: 1.0, 1: (len(y) - positives) / max(positives, 1)}


class _NaiveBayesLogistic:
    """A logistic head on features scaled by ``nb_ratios`` (computed on the rows it is fitted on).

    With a few hundred labels the L2 penalty otherwise spreads weight over every word a
    positive comment happens to contain; scaling lets words that separate the theme move at
    less cost. The scale folds into the weights (``coef_`` is per unscaled feature), so a
    stored head and inference are as before."""

    def __init__(self, estimator, text_columns) -> None:
        self.estimator = estimator
        self.text_columns = text_columns

    def fit(self, X, y) -> _NaiveBayesLogistic:
        from scipy.sparse import diags

        self.scale = diags(nb_ratios(X, y, self.text_columns))
        self.estimator.class_weight = positive_weight(y)
        self.estimator.fit(X @ self.scale, y)
        self.coef_ = self.estimator.coef_ * self.scale.diagonal()
        self.intercept_ = self.estimator.intercept_
        return self

    def predict_proba(self, X):
        return self.estimator.predict_proba(X @ self.scale)


def fit_stack(
    rows: Sequence[Features],
    comments: Sequence[str],
    gold: Sequence[set[str]],
    evidence: Sequence[Sequence[float]],
    theme_ids: Sequence[str],
    *,
    dense: Sequence[Sequence[float]] | None = None,
    encoder: str | None = None,
    dense_scale: float = DENSE_SCALE,
) -> ThemeStack:
    """Fit one stacked head per theme; returns them as stored.

    Its features: words and bigrams, TF-IDF to unit length; character n-grams within words,
    each word's counts times idf summed and divided by the root of the words' summed squares (so
    a word's part of a score is fixed and cached at inference); the built-in readings
    (``meta_features``); the comment's vector (``dense``).
    Per theme the text features are scaled by ``nb_ratios`` before the fit, and the threshold
    for all themes is half the out-of-fold micro-F1, where a calibrated probability maximises F1.

    ``dense``: one embedding per row, made by the encoder called ``encoder`` (stored, so that
    inference knows which encoder the heads need), times ``dense_scale``."""
    import numpy as np
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    n = len(rows)
    terms: dict[str, Sequence[Mapping[str, float]]] = {
        "word": [dict.fromkeys(word_terms(f), 1.0) for f in rows],
        "char": [char_terms(c) for c in comments],
    }
    idfs: dict[str, dict[str, float]] = {}
    inputs: list[dict[str, float]] = [{} for _ in range(n)]
    for block in BLOCKS:
        df = Counter(t for row in terms[block] for t in row)
        idfs[block] = {
            t: math.log((1 + n) / (1 + d)) + 1  # scikit-learn's smooth idf
            for t, d in df.items()
            if d >= MIN_DF[block]
        }
    for merged, word_row, comment in zip(inputs, _tfidf_rows(terms["word"], idfs["word"]), comments):
        merged.update({"word|" + t: v for t, v in word_row.items()})
        merged.update({"char|" + g: v for g, v in _char_row(comment, idfs["char"]).items()})
    for merged, feats, ev in zip(inputs, rows, evidence):
        merged.update({"meta|" + f: v for f, v in meta_features(feats, ev, theme_ids).items()})
    dense_block = add_dense_block(inputs, dense, encoder, dense_scale) if dense is not None else None
    vectoriser = DictVectorizer()
    X = vectoriser.fit_transform(inputs).tocsr()
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)  # liblinear takes 32-bit only
    names = [str(name) for name in vectoriser.get_feature_names_out()]
    Y = np.array([[t in g for t in theme_ids] for g in gold], dtype=bool).reshape(n, len(theme_ids))
    B = np.array([[builtin_confidence(e) for e in ev] for ev in evidence]).reshape(n, len(theme_ids))
    splits = [
        list(KFold(min(FOLDS, n), shuffle=True, random_state=seed).split(np.arange(n))) if n >= 2 else []
        for seed in range(CV_REPEATS)
    ]

    text_columns = np.array([name.startswith(("word|", "char|")) for name in names])

    def model(C: float) -> _NaiveBayesLogistic:
        return _NaiveBayesLogistic(LogisticRegression(C=C, solver="liblinear", random_state=0), text_columns)

    out_of_fold = B.copy()
    plans: dict[str, tuple[float, float]] = {}
    for t, theme_id in enumerate(theme_ids):
        y = Y[:, t].astype(int)
        if y.sum() < MIN_POSITIVES or y.sum() == n:
            continue  # nothing to learn: the built-in reading stands (threshold 0.5)
        builtin = np.clip(B[:, t], BUILTIN_CLIP, 1 - BUILTIN_CLIP)
        best = None
        for C in CS:
            probs = np.zeros(n)  # each row's mean out-of-fold probability over the repeats
            for folds in splits:
                for train_idx, test_idx in folds:
                    if 0 < y[train_idx].sum() < len(train_idx):
                        fitted = model(C).fit(X[train_idx], y[train_idx])
                        probs[test_idx] += fitted.predict_proba(X[test_idx])[:, 1] / len(splits)
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
    heads: dict[str, StackedHead] = {}
    columns: list[str] = []  # themes with fitted weights, in the order of each feature's weight list
    coefs = []
    for theme_id, (C, w) in plans.items():
        head = StackedHead(C=C, blend=w)
        if w > 0:
            fitted = model(C).fit(X, Y[:, theme_ids.index(theme_id)].astype(int))
            head.bias = round(float(fitted.intercept_[0]), 5)
            columns.append(theme_id)
            coefs.append(fitted.coef_[0])
        heads[theme_id] = head
    vocab: dict[str, dict[str, list[float]]] = {block: {} for block in (*BLOCKS, "meta")}
    if dense_block is not None:
        vocab["dense"] = {}
    W = np.array(coefs).T if coefs else np.zeros((len(names), 0))
    for name, weights in zip(names, W):
        block, term = name.split("|", 1)
        vocab[block][term] = [round(float(x), WEIGHT_DIGITS) for x in weights]
    for block in BLOCKS:
        # every training term keeps its idf (it counts in the comment's length) even where no
        # weight is stored; the list is [idf, weight per column]
        for term, value in idfs[block].items():
            vocab[block][term] = [round(value, WEIGHT_DIGITS)] + vocab[block].get(term, [0.0] * len(columns))
    return ThemeStack(threshold=round(threshold, 4), heads=heads, columns=columns, vocab=vocab, dense=dense_block)


class StackedHeads:
    """A stored stack ready to score comments: one lookup per feature, one matrix product."""

    def __init__(self, stack: ThemeStack) -> None:
        import numpy as np

        self.threshold = stack.threshold
        self.heads = stack.heads
        self.columns = list(stack.columns)
        self.encoder = stack.encoder
        self.dense_scale = stack.dense.scale if stack.dense is not None else DENSE_SCALE
        self.index: dict[str, dict[str, int]] = {}
        self.idf: list[float] = []  # per row; 1 for the meta block
        rows: list[list[float]] = []
        for block, terms in stack.vocab.items():
            index = self.index.setdefault(block, {})
            for term, values in terms.items():
                index[term] = len(rows)
                self.idf.append(values[0] if block in BLOCKS else 1.0)
                rows.append(values[1:] if block in BLOCKS else values)
        self.weights = np.array(rows, dtype=float).reshape(len(rows), len(self.columns))
        dense_index = self.index.get("dense", {})  # one row per dimension, in order
        self._dense_weights = self.weights[[dense_index[str(i)] for i in range(len(dense_index))]] * self.dense_scale
        self._char_cache: dict[str, tuple[list[float] | None, float]] = {}
        char_rows = self.index.get("char", {}).values()
        self._char_weights = dict(zip(char_rows, self.weights[list(char_rows)].tolist()))
        biases = [self.heads[t].bias for t in self.columns]
        self.bias = np.array([b if b is not None else 0.0 for b in biases])
        self._np = np

    def _char_word(self, word: str) -> tuple[list[float] | None, float]:
        """A word's part of every column's score and of the block's squared length, cached:
        words repeat, and their n-grams cost more to cut and look up than to remember."""
        part = self._char_cache.get(word)
        if part is None:
            if len(self._char_cache) >= CHAR_CACHE:
                self._char_cache.clear()
            index = self.index.get("char", {})
            counts: dict[int, int] = {}  # not a Counter: its isinstance check cost more than the counting
            for g in word_grams(word):
                if (r := index.get(g)) is not None:
                    counts[r] = counts.get(r, 0) + 1
            scores, energy = None, 0.0
            for r, c in counts.items():  # a handful of n-grams: plain Python beats a numpy call
                v = c * self.idf[r]
                energy += v * v
                weighted = [v * w for w in self._char_weights[r]]
                scores = weighted if scores is None else [a + b for a, b in zip(scores, weighted)]
            part = self._char_cache[word] = (scores, energy)
        return part

    def fitted_probabilities(
        self,
        feats: Features,
        comment: str,
        evidence: Sequence[float],
        theme_ids: Sequence[str],
        dense: Sequence[float] | None = None,
    ) -> dict[str, float]:
        """Each fitted column's probability for one comment (before blending); ``dense`` is the
        comment's embedding, required when the heads were fitted with one."""
        if not self.columns:
            return {}
        if self.encoder and dense is None:
            raise ValueError(f"these theme heads need the comment's {self.encoder} embedding")
        idf = self.idf
        index = self.index.get("word", {})
        rows = [r for t in word_terms(feats) if (r := index.get(t)) is not None]
        values = [idf[r] for r in rows]  # binary term frequency
        norm = math.sqrt(sum(v * v for v in values))  # the word block to unit length
        if norm:
            values = [v / norm for v in values]
        index = self.index.get("meta", {})
        for f, v in meta_features(feats, evidence, theme_ids).items():
            if (r := index.get(f)) is not None:
                rows.append(r)
                values.append(v)
        z = self.bias + self._np.array(values) @ self.weights[rows] if rows else self.bias
        if dense is not None:
            z = z + self._np.asarray(dense, dtype=float) @ self._dense_weights
        z = z.tolist()
        char_z = [0.0] * len(z)
        energy = 0.0
        for word in comment.lower().split():
            scores, e = self._char_word(word)
            if scores is not None:
                char_z = [a + b for a, b in zip(char_z, scores)]
                energy += e
        if energy:
            scale = 1.0 / math.sqrt(energy)
            z = [a + b * scale for a, b in zip(z, char_z)]
        return {t: _sigmoid(x) for t, x in zip(self.columns, z)}

    def confidence(self, theme_id: str, fitted: dict[str, float], evidence: float) -> float:
        """The stacked head's probability, blended with the built-in confidence as fitted."""
        builtin = min(max(builtin_confidence(evidence), BUILTIN_CLIP), 1 - BUILTIN_CLIP)
        w = self.heads[theme_id].blend
        if not w or theme_id not in fitted:
            return builtin
        return w * fitted[theme_id] + (1 - w) * builtin
