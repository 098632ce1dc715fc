"""The organisation's own sentiment: a multinomial logistic head blended with the built-in one.

The head reads the built-in model's sentiment readings, the comment's words and character
n-grams (one TF-IDF block) and its vector; since ``READING`` 2 also the words under a
negation, links and @handles as one term each, and the comment's style. Balanced class
weights, because the target is macro-F1 and the rare neutral class counts as much as the
others. How far the fitted head is
trusted against the built-in label's reading of the same labels is chosen by cross-validation
on those labels: an organisation whose words the built-in lexicon reads well keeps more of it,
one whose comments it reads badly (tweets, another trade's vocabulary) trusts its own head.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from npsloop.services.classifier.sentiment import NEGATOR_STEMS
from npsloop.services.classifier.stacking import CHAR_CACHE, add_dense_block, word_grams, word_terms
from npsloop.services.classifier.stored_model import DenseBlock, SentimentStack
from npsloop.services.classifier.text import negation_flags

SENTIMENTS = ("positive", "neutral", "negative")
MIN_EXAMPLES = 200  # fewer sentiment labels: the built-in sentiment stands (the head lost at 100)
MIN_PER_CLASS = 3  # each class needs a few examples for its weights to mean anything
C = 1.0
# The fitted head's share against the built-in table (``choose_blend``): chosen per training run
# by cross-validation on the organisation's labels, from these.
BLENDS = tuple(i / 10 for i in range(11))
FOLDS = 5
CV_REPEATS = 3  # folds shuffled this many ways, out-of-fold probabilities averaged
TABLE_SMOOTHING = 1.0  # added to every cell of the built-in label x gold label table
# ... and this to its diagonal: the built-in label is trusted as if 20 labels per class had
# agreed with it. A few hundred labels hold few neutral ones, and one unlucky sample could
# teach the table that the built-in "neutral" mostly meant "negative".
BUILTIN_AGREEMENT = 20.0
WEIGHT_DIGITS = 4
DENSE_SCALE = 1.5  # the comment vector's length against the unit-length text block
# What a newly fitted head reads (stored with it; a head keeps reading what it was fitted on).
# 1: word stems and bigrams, the character n-grams of each word, the built-in readings, the
# vector. 2 adds what a bag of words misses in short, informal comments: a word under a negation
# as a term of its own ("not helpful" is not "helpful"), a link or an @handle as one term (their
# characters filled the text block and meant nothing), and the comment's style.
READING = 2
NEGATION_WINDOW = 4  # words a negator reaches, as ``text.negation_flags``
_STEM_BREAKS = frozenset("|")  # punctuation among an analysis's stems
_LINK = re.compile(r"^(?:https?://|www\.)\S")
_STRETCHED = re.compile(r"([a-z])\1\1")  # "sooo", "pleeease"
_POSITIVE_EMOTICON = re.compile(
    r"(?::|;|=)-?(?:\)|d\b|p\b)|<3|[\U0001F600-\U0001F60F\U0001F642\U0001F44D\u263a\u2764]", re.IGNORECASE
)
# ":/" and "=/" but not a link's "://" (links are left out of the style readings anyway)
_NEGATIVE_EMOTICON = re.compile(
    r"(?::|=)-?(?:\(|/(?!/)|\[)|[\U0001F620-\U0001F62F\U0001F641\U0001F44E\U0001F612\U0001F61E]"
)

Features = dict[str, float]


def sentiment_meta(
    feats: Features, builtin_label: str, builtin_value: float, comment: str, reading: int = READING
) -> Features:
    """The built-in model's sentiment readings of a comment (``features.features`` without its
    words and theme evidence, plus the built-in label and value) and, from reading 2, its style."""
    meta = {f: v for f, v in feats.items() if not f.startswith(("w:", "b:", "lex:"))}
    meta["base:" + builtin_label] = 1.0
    meta["value"] = builtin_value
    if reading >= 2:
        meta.update(style_readings(comment))
    return meta


def style_readings(comment: str) -> Features:
    """How the comment is written, where it says something: exclamation marks, a question,
    words in capitals, stretched words, emoticons and emoji of either kind (0-1 each). Links are
    left out: a query string's "?" asks nothing."""
    words = [w for w in comment.split() if not _LINK.match(w.lower())]
    comment = " ".join(words)
    shouted = sum(1 for w in words if len(w) > 2 and w.isupper() and w.isalpha())
    found = {
        "sty:excl": min(comment.count("!"), 3) / 3,
        "sty:q": float("?" in comment),
        "sty:caps": min(shouted, 3) / 3,
        "sty:elong": float(bool(_STRETCHED.search(comment.lower()))),
        "sty:pemo": float(bool(_POSITIVE_EMOTICON.search(comment))),
        "sty:nemo": float(bool(_NEGATIVE_EMOTICON.search(comment))),
    }
    return {f: v for f, v in found.items() if v}


def negated_terms(stems: Sequence[str]) -> set[str]:
    """``n:`` + each stem in a negator's scope (``text.negation_flags`` read on stems: up to
    ``NEGATION_WINDOW`` words, ended by the clause's end ("|") or a contrast word, kept open by
    "any" words)."""
    flags = negation_flags(stems, NEGATION_WINDOW, negators=NEGATOR_STEMS, breaks=_STEM_BREAKS)
    return {"n:" + stem for stem, negated in zip(stems, flags) if negated}


def word_char_terms(word: str, reading: int = READING) -> list[str]:
    """The text-block terms of one lower-case word: its character n-grams (``c:`` + n-gram), or
    from reading 2 a single ``c:<link>`` / ``c:<handle>`` for a link or an @handle."""
    if reading >= 2:
        if _LINK.match(word):
            return ["c:<link>"]
        if word.startswith("@") and len(word) > 1:
            return ["c:<handle>"]
    return ["c:" + g for g in word_grams(word)]


def softmax(zs: Sequence[float]) -> list[float]:
    top = max(zs)
    exps = [math.exp(z - top) for z in zs]
    total = sum(exps)
    return [e / total for e in exps]


def builtin_table(builtin: Sequence[int], gold: Sequence[int]) -> list[list[float]]:
    """Per built-in label, the probability of each gold label, balanced by the gold labels'
    frequencies like the head's class weights (so neither side of the blend favours the
    frequent class)."""
    counts = [[TABLE_SMOOTHING + (BUILTIN_AGREEMENT if b == g else 0.0) for g in range(3)] for b in range(3)]
    for b, g in zip(builtin, gold):
        counts[b][g] += 1
    frequency = Counter(gold)
    table = []
    for row in counts:
        total = sum(row)
        balanced = [row[g] / total / (frequency[g] / len(gold)) for g in range(3)]
        scale = sum(balanced)
        table.append([round(v / scale, WEIGHT_DIGITS) for v in balanced])
    return table


def text_terms(feats: Features, comment: str, stems: Sequence[str], reading: int = READING) -> set[str]:
    """The comment's text block: its word terms, its words' character terms and, from reading 2,
    its negated words (``stems``: the analysis's, "|" at punctuation)."""
    terms = set(word_terms(feats))
    for word in comment.lower().split():
        terms.update(word_char_terms(word, reading))
    if reading >= 2:
        terms |= negated_terms(stems)
    return terms


def _inputs(
    terms: Sequence[set[str]],
    metas: Sequence[Features],
    idf: dict[str, float],
    dense: Sequence[Sequence[float]] | None,
    encoder: str | None,
) -> tuple[list[dict[str, float]], DenseBlock | None]:
    """Each comment's features as the head reads them: its known text terms times idf, to unit
    length over the known ones (as ``SentimentHead`` does), its meta readings, its vector;
    and the vector block's stored description."""
    inputs = []
    for row, meta in zip(terms, metas):
        known = [t for t in row if t in idf]
        norm = math.sqrt(sum(idf[t] ** 2 for t in known)) or 1.0
        merged = {"word|" + t: idf[t] / norm for t in known}
        merged.update({"meta|" + k: v for k, v in meta.items()})
        inputs.append(merged)
    dense_block = add_dense_block(inputs, dense, encoder, DENSE_SCALE) if dense is not None else None
    return inputs, dense_block


def _idf(terms: Sequence[set[str]]) -> dict[str, float]:
    df = Counter(t for row in terms for t in row)
    n = len(terms)
    return {t: math.log((1 + n) / (1 + d)) + 1 for t, d in df.items()}  # scikit-learn's smooth idf


def _fit_head(
    terms: Sequence[set[str]],
    metas: Sequence[Features],
    dense: Sequence[Sequence[float]] | None,
    encoder: str | None,
    y: Any,
) -> tuple[Any, dict[str, float], Any, DenseBlock | None]:
    """(vectoriser, idf, fitted head, vector block) on these rows; ``y``: their class indices."""
    import numpy as np
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    idf = _idf(terms)
    vectoriser = DictVectorizer()
    inputs, dense_block = _inputs(terms, metas, idf, dense, encoder)
    X = vectoriser.fit_transform(inputs)
    head = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(X, np.array(y))
    return vectoriser, idf, head, dense_block


def macro_f1(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """Three-class macro-F1 (``evaluation.score``'s, on class indices)."""
    f1s = []
    for c in range(3):
        right = sum(1 for g, p in zip(gold, predicted) if g == p == c)
        total = sum(1 for g in gold if g == c) + sum(1 for p in predicted if p == c)
        f1s.append(2 * right / total if total else 0.0)
    return sum(f1s) / 3


def choose_blend(
    terms: Sequence[set[str]],
    metas: Sequence[Features],
    dense: Sequence[Sequence[float]] | None,
    encoder: str | None,
    builtin: Sequence[int],
    y: Sequence[int],
) -> float:
    """The fitted head's share against the built-in table, chosen by cross-validation on the
    organisation's labels: the share whose blend of out-of-fold probabilities (the head's and
    the table's, each fitted on the other folds; averaged over ``CV_REPEATS`` shufflings of
    the folds) scores the best macro-F1. Ties go to the smaller share."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    n = len(y)
    gold = np.array(y)
    fitted = np.zeros((n, 3))
    table = np.zeros((n, 3))
    for repeat in range(CV_REPEATS):
        folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=repeat)
        for fit, held in folds.split(np.zeros(n), gold):
            fit_terms = [terms[i] for i in fit]
            vectoriser, idf, head, _ = _fit_head(
                fit_terms,
                [metas[i] for i in fit],
                None if dense is None else [dense[i] for i in fit],
                encoder,
                gold[fit],
            )
            held_inputs, _ = _inputs(
                [terms[i] for i in held],
                [metas[i] for i in held],
                idf,
                None if dense is None else [dense[i] for i in held],
                encoder,
            )
            fitted[held] += head.predict_proba(vectoriser.transform(held_inputs)) / CV_REPEATS
            rows = builtin_table([builtin[i] for i in fit], [y[i] for i in fit])
            table[held] += np.array([rows[builtin[i]] for i in held]) / CV_REPEATS
    best_share, best_f1 = BLENDS[0], -1.0
    for share in BLENDS:
        blended = share * fitted + (1 - share) * table
        score = macro_f1(y, [int(c) for c in np.argmax(blended, axis=1)])  # ties: the lower class
        if score > best_f1 + 1e-9:
            best_share, best_f1 = share, score
    return best_share


def fit_sentiment(
    feats: Sequence[Features],
    comments: Sequence[str],
    stems: Sequence[Sequence[str]],
    builtin: Sequence[tuple[str, float]],
    gold: Sequence[str],
    *,
    dense: Sequence[Sequence[float]] | None = None,
    encoder: str | None = None,
) -> SentimentStack | None:
    """Fit the head on labelled comments; the stored head, or None when there are too few
    labels (``MIN_EXAMPLES`` in all, ``MIN_PER_CLASS`` of each sentiment). ``stems``: each
    comment's analysed stems. ``dense``: one vector per comment from the encoder called
    ``encoder`` (stored: reading needs it too).
    How far the head is trusted against the built-in table is ``choose_blend``'s."""
    n = len(gold)
    y = [SENTIMENTS.index(g) for g in gold]
    counts = Counter(y)
    if n < MIN_EXAMPLES or any(counts[c] < MIN_PER_CLASS for c in range(3)):
        return None
    if len(stems) != n:
        raise ValueError("fit_sentiment needs each comment's stems")
    terms = [text_terms(f, c, st) for f, c, st in zip(feats, comments, stems)]
    metas = [sentiment_meta(f, label, value, c) for f, (label, value), c in zip(feats, builtin, comments)]
    builtin_labels = [SENTIMENTS.index(label) for label, _ in builtin]
    # Fitted on all the labels first: it checks the vectors (one per row, an encoder named)
    # before the cross-validation spends its fits.
    vectoriser, idf, head, dense_block = _fit_head(terms, metas, dense, encoder, y)
    share = choose_blend(terms, metas, dense, encoder, builtin_labels, y)
    weights = head.coef_.T  # feature x class, classes in SENTIMENTS order (all three present)
    vocab: dict[str, dict[str, list[float]]] = {"word": {}, "meta": {}}
    if dense_block is not None:
        vocab["dense"] = {}
    for name, row in zip(vectoriser.get_feature_names_out(), weights):
        block, term = str(name).split("|", 1)
        values = [round(float(w), WEIGHT_DIGITS) for w in row]
        vocab[block][term] = [round(idf[term], WEIGHT_DIGITS), *values] if block == "word" else values
    return SentimentStack(
        blend=share,
        bias=[round(float(b), WEIGHT_DIGITS) for b in head.intercept_],
        builtin_table=builtin_table(builtin_labels, y),
        vocab=vocab,
        examples=n,
        dense=dense_block,
        reading=READING,
    )


class SentimentHead:
    """A stored head ready to read comments: one lookup per term (a word's character n-grams
    are looked up once and remembered), one small matrix product."""

    def __init__(self, stored: SentimentStack) -> None:
        import numpy as np

        self.blend = float(stored.blend)
        self.reading = stored.reading
        self.table = stored.builtin_table
        words, meta = stored.vocab.get("word", {}), stored.vocab.get("meta", {})
        # Text terms' rows first, then the meta features'. A text term's weights are stored
        # times its idf: its part of the score is then that row over the block's length.
        self.text_rows = len(words)
        self.rows = {term: row for row, term in enumerate((*words, *meta))}
        self.idf = np.array([entry[0] for entry in words.values()] + [0.0] * len(meta))
        weights = [[entry[0] * w for w in entry[1:]] for entry in words.values()] + list(meta.values())
        self.weights = np.array(weights, dtype=float).reshape(len(weights), 3)
        self.bias = np.array(stored.bias, dtype=float)
        # The dense block, one row per dimension in order, times the scale it was fitted with.
        self.encoder = stored.encoder
        dense = stored.vocab.get("dense", {})
        scale = stored.dense.scale if stored.dense is not None else DENSE_SCALE
        self.dense_weights = np.array([dense[str(i)] for i in range(len(dense))], dtype=float).reshape(
            len(dense), 3
        ) * float(scale)
        self._word_rows: dict[str, tuple[int, ...]] = {}
        self._np = np

    def _char_rows(self, word: str) -> tuple[int, ...]:
        """The rows of a word's known character terms, remembered: words repeat."""
        rows = self._word_rows.get(word)
        if rows is None:
            if len(self._word_rows) >= CHAR_CACHE:
                self._word_rows.clear()
            found = (self.rows.get(term) for term in word_char_terms(word, self.reading))
            rows = self._word_rows[word] = tuple(r for r in found if r is not None)
        return rows

    def probabilities(
        self,
        feats: Features,
        comment: str,
        builtin_label: str,
        builtin_value: float,
        dense: Sequence[float] | None = None,
        *,
        stems: Sequence[str],
    ) -> list[float]:
        """P(positive, neutral, negative): the fitted head blended with the built-in label's table.
        ``dense``: the comment's vector, required when the head was fitted with one; ``stems``:
        the comment's analysed stems (a head of reading 2 reads the negated ones)."""
        if self.encoder and dense is None:
            raise ValueError(f"this sentiment head needs the comment's {self.encoder} vector")
        text_rows, rows = self.text_rows, self.rows
        text: set[int] = set()
        meta_rows, meta_values = [], []
        readings: list[tuple[str, float]] = [*feats.items(), ("base:" + builtin_label, 1.0), ("value", builtin_value)]
        if self.reading >= 2:
            readings += style_readings(comment).items()
            readings += ((term, 1.0) for term in negated_terms(stems))
        for f, v in readings:
            if (r := rows.get(f)) is not None:  # theme evidence and unseen words have no row
                if r < text_rows:
                    text.add(r)  # binary: a term counts once
                else:
                    meta_rows.append(r)
                    meta_values.append(v)
        for word in comment.lower().split():
            text.update(self._char_rows(word))
        z = self.bias.copy()
        if text:
            found = list(text)
            idf = self.idf[found]
            z += self.weights[found].sum(axis=0) / math.sqrt(float(idf @ idf))
        if meta_rows:
            z += self._np.array(meta_values) @ self.weights[meta_rows]
        if self.encoder:
            z += self._np.asarray(dense, dtype=float) @ self.dense_weights
        fitted = softmax(z.tolist())
        prior = self.table[SENTIMENTS.index(builtin_label)]
        return [self.blend * p + (1 - self.blend) * q for p, q in zip(fitted, prior)]

    def read(
        self,
        feats: Features,
        comment: str,
        builtin_label: str,
        builtin_value: float,
        dense: Sequence[float] | None = None,
        *,
        stems: Sequence[str],
    ) -> tuple[str, float]:
        """(label, value -1..1) of a comment: the most probable class, P(positive) - P(negative)."""
        probs = self.probabilities(feats, comment, builtin_label, builtin_value, dense, stems=stems)
        best = max(range(3), key=lambda c: (probs[c], -c))
        return SENTIMENTS[best], round(probs[0] - probs[2], 4)
