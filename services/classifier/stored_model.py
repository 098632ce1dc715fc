"""A trained model as stored under ``data_dir/classifier/``: typed, versioned, saved and read.

Every part whose shape has changed carries its own ``format``. A file in any other format is
refused with ``StoredModelError``, never converted: nothing older was released, and training
again takes seconds.
"""

from __future__ import annotations

import json
import pathlib
import re
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from npsloop.shared.settings import ConfigError

FORMAT: Final = 1
THEME_STACK_FORMAT: Final = 2
SENTIMENT_STACK_FORMAT: Final = 1
VERSION_RE = re.compile(r"^trained-(\d{8}T\d{6})Z(?:-(\d+))?$")
RETRAIN = "run `npsloop classifier train` again (the file can then be deleted)"

# block -> term -> weights; in a text block ("word", "char") the idf comes first
Vocabulary = dict[str, dict[str, list[float]]]


class StoredModelError(ConfigError):
    """A stored model this npsloop cannot read: start-up stops and says how to replace it."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DenseBlock(_Part):
    """The comment vector a set of heads reads: which encoder makes it, and its weight."""

    encoder: str
    dimension: int
    scale: float


class SentenceReading(_Part):
    """Sentences of a longer comment are read on their own too (``TrainedClassifier``)."""

    threshold: float


class StackedHead(_Part):
    """One theme's stacked head: its regularisation, its share against the built-in
    confidence, and its bias (none where that share is 0 and no weights were fitted)."""

    C: float
    blend: float
    bias: float | None = None


class ThemeStack(_Part):
    """The stacked theme heads (``stacking.fit_stack``): one weight column per fitted theme."""

    format: Literal[2] = THEME_STACK_FORMAT
    threshold: float
    heads: dict[str, StackedHead]
    columns: list[str]  # the fitted themes, in the order of every vocabulary entry's weights
    vocab: Vocabulary
    dense: DenseBlock | None = None
    theme_ids: list[str] = Field(default_factory=list)  # the themes it was trained for
    sentences: SentenceReading | None = None  # None: whole comments only (--embeddings models)

    @property
    def encoder(self) -> str | None:
        return self.dense.encoder if self.dense is not None else None


class SentimentStack(_Part):
    """The sentiment head (``sentiment_head.fit_sentiment``), blended with the built-in reading."""

    format: Literal[1] = SENTIMENT_STACK_FORMAT
    blend: float
    bias: list[float]  # one per class, in ``sentiment_head.SENTIMENTS`` order
    builtin_table: list[list[float]]  # built-in label x gold label
    vocab: Vocabulary
    examples: int
    dense: DenseBlock | None = None
    # What the head reads (``sentiment_head.READING``); heads stored before this field read 1.
    reading: Literal[1, 2] = 1

    @property
    def encoder(self) -> str | None:
        return self.dense.encoder if self.dense is not None else None


class TrainingSummary(_Part):
    """What training saw and decided, for people reading the model and for inference."""

    theme_examples: int
    sentiment_examples: int
    thresholds: dict[str, float] = Field(default_factory=dict)  # per warm-started theme head
    kept_builtin: list[str] = Field(default_factory=list)  # themes whose labels lost to the zero-shot
    theme_positives: dict[str, int] = Field(default_factory=dict)  # per warm-started theme head
    stack_threshold: float | None = None
    embeddings: str | None = None  # the encoder the heads read
    sentiment_blend: float | None = None


class TrainedModel(_Part):
    """Everything a trained classifier needs, as stored."""

    format: Literal[1] = FORMAT
    version: str | None = None  # set by ``save``
    base_version: str
    theme_ids: list[str]
    trained_on: TrainingSummary
    theme_heads: dict[str, dict[str, float]]  # warm-started: theme -> {feature: weight}, "" = bias
    theme_stack: ThemeStack | None = None  # None: no comment was labelled for themes
    sentiment_stack: SentimentStack | None = None  # None: the built-in sentiment stands
    # theme -> built-in term (stems joined by a space) -> factor on its weight, 0 = dropped:
    # where the organisation's labels override the built-in vocabulary (training.fit_term_factors).
    # Absent from models stored before it: they read the vocabulary unchanged.
    term_factors: dict[str, dict[str, float]] = Field(default_factory=dict)

    @property
    def encoder(self) -> str | None:
        """The encoder the heads read (theme and sentiment heads read the same one)."""
        theme = self.theme_stack.encoder if self.theme_stack is not None else None
        return theme or (self.sentiment_stack.encoder if self.sentiment_stack is not None else None)


def _version_key(name: str) -> tuple[str, int] | None:
    match = VERSION_RE.match(name)
    return (match.group(1), int(match.group(2) or 0)) if match else None


def stored_versions(data_dir: pathlib.Path) -> list[pathlib.Path]:
    """The stored models' files, newest version first."""
    folder = pathlib.Path(data_dir) / "classifier"
    if not folder.is_dir():
        return []
    keyed = [(key, path) for path in folder.glob("trained-*.json") if (key := _version_key(path.stem))]
    return [path for _, path in sorted(keyed, reverse=True)]


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
    payload = model.model_copy(update={"version": version}).model_dump(exclude_none=True)
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
    if isinstance(stack, dict) and stack.get("format", 1) != THEME_STACK_FORMAT:
        raise refuse(
            f"has theme_stack format {stack.get('format', 1)}; this npsloop reads theme_stack format {THEME_STACK_FORMAT}"
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


def read(path: pathlib.Path) -> TrainedModel:
    """The model stored at ``path``.

    Raises ``StoredModelError`` for a model in another format (or one that does not fit this
    format's types), ``OSError`` or ``ValueError`` for a file that cannot be read as JSON."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    _refuse_other_formats(payload, path)
    payload.pop("sentiment_head", None)  # written as null before it was dropped
    try:
        return TrainedModel.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise StoredModelError(
            f"stored classifier model {path} does not fit format {FORMAT} ({where}: {first['msg']}): {RETRAIN}"
        ) from None
