"""The organisation's own model: logistic regressions warm-started from the built-in one.

Features are the comment's word stems and in-clause bigrams plus the built-in model's
own readings (theme evidence, positive/negative weight, suggestions, score). Each theme
head starts exactly at the built-in decision ("evidence >= 0.69") and each sentiment
class starts at the built-in label, and is regularised towards that start, so a few
labels move it only where they disagree with the lexicon. Pure Python, deterministic.
Next to them, ``stacking`` fits free L2 logistic heads on the same features plus character
n-grams and a dense vector of the comment (``static_vectors``, or MiniLM's with the ml
extra; scikit-learn, cross-validated on the labels); a theme's decision averages both,
each scaled to its own threshold (the stacked head alone where the warm-started one was
not kept). Themes without a positive label (or added after training) keep the built-in
zero-shot. At inference all heads of a kind are scored together, one matrix product each.
A comment of two sentences or more is also read sentence by sentence with the same heads, and
a theme one sentence names plainly counts for the comment (``SENTENCE_THRESHOLD``).
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from npsloop.services.classifier import static_vectors
from npsloop.services.classifier.calibration import calibrate_theme, trust_for
from npsloop.services.classifier.embeddings import EmbeddingsUnavailable, Encoder, load_encoder
from npsloop.services.classifier.model import (
    Analysis,
    BuiltinClassifier,
    Classification,
    ThemeScore,
    category_for_score,
)
from npsloop.services.classifier.sentiment import score_prior
from npsloop.services.classifier.sentiment_head import FORMAT as SENTIMENT_STACK_FORMAT
from npsloop.services.classifier.sentiment_head import MIN_EXAMPLES as SENTIMENT_MIN_EXAMPLES
from npsloop.services.classifier.sentiment_head import SENTIMENTS, SentimentHead, fit_sentiment
from npsloop.services.classifier.stacking import (
    DENSE_SCALE,
    STACK_FORMAT,
    StackedHeads,
    builtin_confidence,
    fit_stack,
    needed_encoder,
)
from npsloop.services.classifier.text import sentences
from npsloop.shared.settings import ConfigError
from npsloop.shared.taxonomy import ThemeDefinition

log = logging.getLogger("npsloop.classifier")

FORMAT = 1
VERSION_RE = re.compile(r"^trained-(\d{8}T\d{6})Z(?:-(\d+))?$")
LEX_WARM = 1.5  # sigmoid(1.5 * evidence - 1.04) = 0.5 at evidence 0.69, the built-in threshold
BIAS_WARM = -1.04


@dataclass(frozen=True)
class LabelledExample:
    comment: str
    score: int | None = None
    themes: list[str] | None = None  # None = not labelled for themes
    sentiment: str | None = None  # None = not labelled for sentiment


RETRAIN = "run `npsloop classifier train` again (the file can then be deleted)"


class StoredModelError(ConfigError):
    """A stored model this npsloop cannot read: start-up stops and says how to replace it."""


@dataclass
class TrainedModel:
    theme_ids: list[str]
    theme_heads: dict[str, dict[str, float]]  # theme -> {feature: weight}, "" = bias
    base_version: str
    trained_on: dict = field(default_factory=dict)
    version: str | None = None
    # {"threshold": t, "heads": {theme: {...}}}; None: no comment was labelled for themes
    theme_stack: dict | None = None
    # ``sentiment_head.fit_sentiment``'s head; None: the built-in sentiment stands
    sentiment_stack: dict | None = None


def features(analysis: Analysis, score: int | None, theme_ids: tuple[str, ...]) -> dict[str, float]:
    feats: dict[str, float] = {}
    previous = "|"
    for stem in analysis.stems:
        if stem != "|":
            feats["w:" + stem] = 1.0
            if previous != "|":
                feats["b:" + previous + "_" + stem] = 1.0
        previous = stem
    for theme_id, evidence in zip(theme_ids, analysis.theme_evidence):
        if evidence:
            feats["lex:" + theme_id] = min(evidence, 3.0)
    feats["pos"] = min(analysis.positive, 6.0) / 2
    feats["neg"] = min(analysis.negative, 6.0) / 2
    feats["sug"] = min(analysis.suggestions, 3)
    feats["prior"] = score_prior(score)
    feats["cat:" + str(category_for_score(score))] = 1.0
    return feats


def comment_features(analysis: Analysis, score: int | None, theme_ids: tuple[str, ...]) -> dict[str, float]:
    """``features``, or for an empty answer only that it is empty and the score's prior."""
    if analysis.empty:
        return {"empty": 1.0, "prior": score_prior(score)}
    return features(analysis, score, theme_ids)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


EPOCHS = 15
RATE = 0.05
L2 = 0.1
POS_CAP = 3.0
TRUST_AT = 200  # positives of a theme at which its fitted head is trusted alone
# A sentence of a longer comment names a theme on its own where its decision reaches this
# (``TrainedClassifier._read_sentences``); docs/decisions/classifier.md says how it was chosen.
SENTENCE_THRESHOLD = 0.6


def _fit_binary(
    data: list[tuple[dict[str, float], int]],
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
            g = _sigmoid(z) - label
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
    theme_data: list[tuple[dict[str, float], set[str]]] = []
    theme_evidence: list[tuple[float, ...]] = []
    theme_comments: list[str] = []
    sentiment_feats: list[dict[str, float]] = []
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
    trained_on: dict = {
        "theme_examples": len(theme_data),
        "sentiment_examples": len(sentiment_gold),
        "thresholds": {},
        "kept_builtin": [],
    }
    for theme_id in theme_ids:
        labelled = [(feats, int(theme_id in gold)) for feats, gold in theme_data]
        if sum(label for _, label in labelled) < 2:
            continue  # nothing to learn from: keep the built-in zero-shot for this theme
        warm = {"": BIAS_WARM, "lex:" + theme_id: LEX_WARM}
        keep, threshold = calibrate_theme(labelled, theme_id, partial(_fit_binary, warm=warm), trust_at=TRUST_AT)
        if not keep:
            trained_on["kept_builtin"].append(theme_id)  # its labels did not beat the zero-shot reading
            continue
        trained_on.setdefault("theme_positives", {})[theme_id] = sum(label for _, label in labelled)
        trained_on["thresholds"][theme_id] = threshold
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
        theme_stack["theme_ids"] = [t for t in base.theme_ids if t in theme_ids]
        if dense_encoder.name == static_vectors.NAME:
            # MiniLM (--embeddings) would encode every sentence again, and what reading
            # sentences does to that model is not measured: it reads whole comments.
            theme_stack["sentences"] = {"threshold": SENTENCE_THRESHOLD}
        trained_on["stack_threshold"] = theme_stack["threshold"]
        trained_on["embeddings"] = dense_encoder.name
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
        trained_on["sentiment_blend"] = sentiment_stack["blend"]
    return TrainedModel(
        list(theme_ids), heads, base.version, trained_on, theme_stack=theme_stack, sentiment_stack=sentiment_stack
    )


def model_encoder(model: TrainedModel) -> str | None:
    """The encoder a stored model's heads read (theme and sentiment heads read the same one)."""
    return needed_encoder(model.theme_stack) or needed_encoder(model.sentiment_stack)


class TrainedClassifier:
    def __init__(self, model: TrainedModel, base: BuiltinClassifier, encoder: Encoder | None = None) -> None:
        """``encoder``: the one the model was trained with; loaded here when not given (the ml
        extra's MiniLM only where it is installed)."""
        self.model = model
        self.base = base
        needed = model_encoder(model)
        if needed and encoder is None:
            encoder = load_encoder(needed)  # raises EmbeddingsUnavailable where it cannot be had
        if needed and encoder is not None and encoder.name != needed:
            raise EmbeddingsUnavailable(
                f"classifier version {model.version} reads {needed} sentence embeddings; got {encoder.name}"
            )
        self.encoder = encoder if needed else None
        self.version = model.version or "trained-unsaved"
        self.heads = {t: h for t, h in model.theme_heads.items() if t in base.theme_ids}
        positives = model.trained_on.get("theme_positives", {})
        self.trust = {t: trust_for(positives.get(t, 0), TRUST_AT) for t in self.heads}
        self.thresholds = model.trained_on.get("thresholds", {})
        stack = model.theme_stack or {}
        self.stack_heads = stack.get("heads", {})
        self.stack_themes = frozenset(stack.get("theme_ids", ())) & frozenset(base.theme_ids)
        self.stack_threshold = stack.get("threshold", 0.5)
        self.stack = StackedHeads(stack) if self.stack_heads else None
        # None: whole comments only (how --embeddings models are stored)
        self.sentence_threshold = (stack.get("sentences") or {}).get("threshold")
        self._index_warm_heads()
        self.sentiment = SentimentHead(model.sentiment_stack) if model.sentiment_stack else None

    def _index_warm_heads(self) -> None:
        """All warm-started heads as one matrix (feature x head): one product per comment
        instead of a dictionary walk per head."""
        import numpy as np

        self._warm_themes = list(self.heads)
        self._warm_positions = [self.base.theme_ids.index(t) for t in self._warm_themes]
        self._warm_index: dict[str, int] = {}
        for head in self.heads.values():
            for f in head:
                if f:
                    self._warm_index.setdefault(f, len(self._warm_index))
        self._warm_weights = np.zeros((len(self._warm_index), len(self._warm_themes)))
        for column, head in enumerate(self.heads.values()):
            for f, w in head.items():
                if f:
                    self._warm_weights[self._warm_index[f], column] = w
        self._warm_bias = np.array([head.get("", 0.0) for head in self.heads.values()])

    def _warm_confidences(self, feats: dict[str, float], evidence: tuple[float, ...]) -> dict[str, float]:
        """``calibration.theme_confidence`` of every warm-started head at once."""
        if not self._warm_themes:
            return {}
        import numpy as np

        index = self._warm_index
        rows, values = [], []
        for f, v in feats.items():
            if (r := index.get(f)) is not None:
                rows.append(r)
                values.append(v)
        z = self._warm_bias + np.array(values) @ self._warm_weights[rows] if rows else self._warm_bias
        out = {}
        for theme_id, position, zt in zip(self._warm_themes, self._warm_positions, z.tolist()):
            trust = self.trust.get(theme_id, 1.0)
            out[theme_id] = trust * _sigmoid(zt) + (1.0 - trust) * builtin_confidence(evidence[position])
        return out

    def _theme_decisions(
        self, comment: str, analysis: Analysis, feats: dict[str, float], dense: Sequence[float] | None
    ) -> dict[str, float]:
        """Every theme's decision for one text: 0.5 or more means the theme is there."""
        fitted = {}
        if self.stack is not None:
            fitted = self.stack.fitted_probabilities(
                feats, comment, analysis.theme_evidence, self.base.theme_ids, dense
            )
        warm = self._warm_confidences(feats, analysis.theme_evidence)
        decisions = {}
        for theme_id, evidence in zip(self.base.theme_ids, analysis.theme_evidence):
            head = self.heads.get(theme_id)
            if head is None:
                confidence, threshold = builtin_confidence(evidence), 0.5
            else:
                # few labels: lean on the built-in reading; many: on the fitted head
                confidence = warm[theme_id]
                threshold = self.thresholds.get(theme_id, 0.5)
            # each reading scaled so that its own threshold lands on 0.5, then averaged
            decision = confidence * 0.5 / threshold
            stack_head = self.stack_heads.get(theme_id) if theme_id in self.stack_themes else None
            if stack_head:
                assert self.stack is not None
                stacked = self.stack.confidence(theme_id, fitted, evidence)
                stacked *= 0.5 / self.stack_threshold
                # The stacked head already weighs the built-in reading (its blend): averaging it
                # with that reading again, where no warm-started head was kept, would count it twice.
                decision = (decision + stacked) / 2 if head is not None else stacked
            decisions[theme_id] = decision
        return decisions

    def _read_sentences(
        self, comment: str, language: str, score: int | None, decisions: dict[str, float], threshold: float
    ) -> None:
        """Raise ``decisions`` to what each sentence of a longer comment says on its own.

        Over a whole comment a theme's words share the text's length with every other theme's
        ("Staff were lovely. The wait was far too long."); read alone, a sentence says plainly
        what it is about. A sentence counts where its own decision reaches the stricter
        ``threshold`` (scaled to land on 0.5 like every other reading)."""
        for sentence in sentences(comment):
            analysis = self.base.analyse(sentence, language)
            if analysis.empty or not analysis.stems:
                continue
            feats = features(analysis, score, self.base.theme_ids)
            own = self._theme_decisions(sentence, analysis, feats, self._vector(sentence))
            for theme_id, decision in own.items():
                decisions[theme_id] = max(decisions[theme_id], decision * 0.5 / threshold)

    def _vector(self, comment: str | None) -> Sequence[float] | None:
        """The comment's vector for the heads that read one; None where none does."""
        return self.encoder.encode([comment or ""])[0] if self.encoder is not None else None

    @property
    def prepares_batches(self) -> bool:
        return hasattr(self.encoder, "prepare")

    def prepare(self, comments: Sequence[str | None]) -> None:
        """Encode a batch of comments ahead of classifying them one by one (embeddings only:
        a batch costs less per comment); a no-op otherwise."""
        prepare: Any = getattr(self.encoder, "prepare", None)  # a plain Encoder has no cache to fill
        if prepare is not None:
            prepare([c for c in comments if c])

    def classify(self, comment: str | None, score: int | None) -> Classification:
        analysis = self.base.analyse(comment)
        category = category_for_score(score)
        builtin = self.base.from_analysis(analysis, category, score)
        if analysis.unread or not analysis.stems:
            sentiment, value = builtin.sentiment, builtin.sentiment_score
            if analysis.empty and self.sentiment is not None:
                sentiment, value = self.sentiment.read(
                    comment_features(analysis, score, self.base.theme_ids),
                    comment or "",
                    builtin.sentiment,
                    builtin.sentiment_score,
                    self._vector(comment),
                )
            return Classification(category, builtin.themes, sentiment, value, builtin.language, self.version)
        feats = features(analysis, score, self.base.theme_ids)
        dense = self._vector(comment)
        decisions = self._theme_decisions(comment or "", analysis, feats, dense)
        if self.sentence_threshold is not None:
            self._read_sentences(comment or "", analysis.language, score, decisions, self.sentence_threshold)
        themes = [ThemeScore(t, round(min(d, 1.0), 4)) for t, d in decisions.items() if d >= 0.5]
        themes.sort(key=lambda t: (-t.confidence, t.id))
        sentiment, value = builtin.sentiment, builtin.sentiment_score
        if self.sentiment is not None:
            sentiment, value = self.sentiment.read(
                feats, comment or "", builtin.sentiment, builtin.sentiment_score, dense
            )
        return Classification(category, tuple(themes), sentiment, value, builtin.language, self.version)


def _version_key(name: str) -> tuple[str, int] | None:
    match = VERSION_RE.match(name)
    return (match.group(1), int(match.group(2) or 0)) if match else None


def save(model: TrainedModel, data_dir: pathlib.Path, *, now: datetime | None = None) -> str:
    """Store ``model`` as a new version under ``data_dir/classifier/``; return the version."""
    folder = pathlib.Path(data_dir) / "classifier"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    existing = [k for k in (_version_key(p.stem) for p in folder.glob("trained-*.json")) if k]
    version = f"trained-{stamp}"
    newest = max(existing, default=None)
    if newest and newest[0] >= stamp[:-1]:
        # same second (or a clock behind the newest): keep versions strictly increasing
        version = f"trained-{newest[0]}Z-{newest[1] + 1}"
    payload = {
        "format": FORMAT,
        "version": version,
        "base_version": model.base_version,
        "theme_ids": model.theme_ids,
        "trained_on": model.trained_on,
        "theme_heads": model.theme_heads,
        "theme_stack": model.theme_stack,
        "sentiment_stack": model.sentiment_stack,
    }
    tmp = folder / f".{version}.json.tmp"
    tmp.write_text(json.dumps(payload, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    tmp.replace(folder / f"{version}.json")
    model.version = version
    return version


def _refuse_other_formats(payload: Any, path: pathlib.Path) -> None:
    """Raise ``StoredModelError`` naming the format found where ``payload`` is not this format."""

    def refuse(found: str) -> StoredModelError:
        return StoredModelError(f"stored classifier model {path} {found}: {RETRAIN}")

    if not isinstance(payload, dict):
        raise refuse("is not a stored model (not a JSON object)")
    if payload.get("format") != FORMAT:
        raise refuse(f"is in format {payload.get('format')}; this npsloop reads format {FORMAT}")
    stack = payload.get("theme_stack")
    if isinstance(stack, dict) and stack.get("format", 1) != STACK_FORMAT:
        raise refuse(
            f"has theme_stack format {stack.get('format', 1)}; this npsloop reads theme_stack format {STACK_FORMAT}"
        )
    if stack is None and payload.get("theme_heads"):
        raise refuse("has theme heads but no theme_stack (stored before stacking); this npsloop needs theme_stack")
    sentiment = payload.get("sentiment_stack")
    if isinstance(sentiment, dict) and sentiment.get("format") != SENTIMENT_STACK_FORMAT:
        raise refuse(
            f"has sentiment_stack format {sentiment.get('format')}; this npsloop reads sentiment_stack "
            f"format {SENTIMENT_STACK_FORMAT}"
        )
    if payload.get("sentiment_head") is not None:
        raise refuse("has a warm-started sentiment_head (stored before sentiment_stack); this npsloop reads neither")


def load_latest(
    data_dir: pathlib.Path, *, base: BuiltinClassifier, encoder_loader: Callable[[str], Encoder] = load_encoder
) -> TrainedClassifier | None:
    """The newest stored model that fits ``base``'s themes and can be applied here, or None.

    A model trained with sentence embeddings needs the ml extra: where it is missing, that
    version is skipped with a warning for the newest one that does not need it. A model in
    another stored format stops here with ``StoredModelError``: falling back to an older model
    would hide that the newest one is not applied."""
    folder = pathlib.Path(data_dir) / "classifier"
    if not folder.is_dir():
        return None
    candidates = sorted(((k, p) for p in folder.glob("trained-*.json") if (k := _version_key(p.stem))), reverse=True)
    for _, path in candidates:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        _refuse_other_formats(payload, path)
        if not str(payload.get("base_version", "")).startswith("builtin-1"):
            continue
        heads = {t: h for t, h in payload.get("theme_heads", {}).items() if t in base.theme_ids}
        stack = payload.get("theme_stack") or {}
        stack_heads = {t for t in stack.get("heads", {}) if t in base.theme_ids}
        if not heads and not stack_heads and not payload.get("sentiment_stack"):
            continue
        model = TrainedModel(
            payload["theme_ids"],
            payload["theme_heads"],
            payload["base_version"],
            payload.get("trained_on", {}),
            payload["version"],
            payload.get("theme_stack"),
            payload.get("sentiment_stack"),
        )
        encoder = None
        if needed := model_encoder(model):
            try:
                encoder = encoder_loader(needed)
            except EmbeddingsUnavailable as exc:
                log.warning(
                    "classifier version %s skipped: it reads %s sentence embeddings and %s", model.version, needed, exc
                )
                continue
        return TrainedClassifier(model, base, encoder)
    return None
