"""Which classifier a process applies: the newest stored trained model that fits, else the built-in one."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable, Sequence

from npsloop.services.classifier.embeddings import EmbeddingsUnavailable, Encoder, load_encoder
from npsloop.services.classifier.model import BuiltinClassifier, Classification, Classifier
from npsloop.services.classifier.stored_model import StoredModelError, read, stored_versions
from npsloop.services.classifier.trained import TrainedClassifier
from npsloop.shared.taxonomy import ThemeDefinition

log = logging.getLogger("npsloop.classifier")


def load_latest(
    data_dir: pathlib.Path, *, base: BuiltinClassifier, encoder_loader: Callable[[str], Encoder] = load_encoder
) -> TrainedClassifier | None:
    """The newest stored model that fits ``base``'s themes and can be applied here, or None.

    A model trained with sentence embeddings needs the ml extra: where it is missing, that
    version is skipped with a warning for the newest one that does not need it. A model in
    another stored format stops here with ``stored_model.StoredModelError``: falling back to
    an older model would hide that the newest one is not applied."""
    for path in stored_versions(data_dir):
        try:
            model = read(path)
        except (OSError, ValueError):
            continue  # not (or no longer) a readable file
        if not model.base_version.startswith("builtin-1"):
            continue  # features of another built-in model
        applies = any(t in base.theme_ids for t in model.theme_heads) or (
            model.theme_stack is not None and any(t in base.theme_ids for t in model.theme_stack.heads)
        )
        if not applies and model.sentiment_stack is None:
            continue
        encoder = None
        if needed := model.encoder:
            try:
                encoder = encoder_loader(needed)
            except EmbeddingsUnavailable as exc:
                log.warning(
                    "classifier version %s skipped: it reads %s sentence embeddings and %s", model.version, needed, exc
                )
                continue
        return TrainedClassifier(model, base, encoder)
    return None


def load_classifier(*, themes: list[ThemeDefinition] | None = None, data_dir: pathlib.Path | None = None) -> Classifier:
    """The newest compatible trained model under ``data_dir/classifier/``, else the built-in one."""
    base = BuiltinClassifier(themes)
    if data_dir is not None:
        trained = load_latest(pathlib.Path(data_dir), base=base)
        if trained is not None:
            return trained
    return base


class ActiveClassifier:
    """The classifier a running process applies. ``refresh`` swaps in a version trained since,
    so every role picks up ``npsloop classifier train`` within seconds, without a restart.

    Handlers hold this object, not the model: a swap takes effect at the next comment.
    """

    def __init__(self, *, themes: list[ThemeDefinition] | None, data_dir: pathlib.Path | None) -> None:
        self._themes, self._data_dir = themes, data_dir
        self._seen = _newest_file(data_dir)
        self.current: Classifier = load_classifier(themes=themes, data_dir=data_dir)

    @property
    def version(self) -> str:
        return self.current.version

    @property
    def prepares_batches(self) -> bool:
        return self.current.prepares_batches

    def prepare(self, comments: Sequence[str | None]) -> None:
        self.current.prepare(comments)

    def classify(self, comment: str | None, score: int | None) -> Classification:
        return self.current.classify(comment, score)

    def refresh(self) -> bool:
        """Load the newest stored version if one appeared since; True when the classifier changed.

        A newest model that cannot be applied here is logged and the current one kept: a
        running role never stops classifying because of a file written beside it.
        """
        newest = _newest_file(self._data_dir)
        if newest == self._seen:
            return False
        self._seen = newest
        try:
            loaded = load_classifier(themes=self._themes, data_dir=self._data_dir)
        except StoredModelError as exc:
            log.error("classifier version not applied, keeping %s: %s", self.current.version, exc)
            return False
        if loaded.version == self.current.version:
            return False
        previous, self.current = self.current.version, loaded
        log.info(
            "classifier %s active (was %s); `npsloop reclassify` applies it to stored responses",
            loaded.version,
            previous,
        )
        return True


def _newest_file(data_dir: pathlib.Path | None) -> str | None:
    if data_dir is None:
        return None
    found = stored_versions(pathlib.Path(data_dir))
    return found[0].name if found else None
