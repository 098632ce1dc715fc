"""Automatic retraining after N new corrections (``NPSLOOP_CLASSIFIER_RETRAIN_AFTER_CORRECTIONS``).

Off by default. Where it is set, the ``classifier`` role counts the corrections made since the
newest stored version was trained and, from N on, trains a new version from every stored
correction, exactly as ``npsloop classifier train`` without ``--labels`` does. Every role's
hot reload (``active.ActiveClassifier.refresh``) then picks the new version up.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from datetime import UTC, datetime

from npsloop.services.classifier import repository
from npsloop.services.classifier.corrections import load_corrections
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.stored_model import VERSION_RE, save, stored_versions
from npsloop.services.classifier.training import train
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database
from npsloop.shared.taxonomy import ThemeDefinition

log = logging.getLogger("npsloop.classifier")


def last_trained_at(data_dir: pathlib.Path) -> datetime | None:
    """When the newest stored version was trained (its version names the time), or None."""
    for path in stored_versions(data_dir):
        match = VERSION_RE.match(path.stem)
        if match:
            return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return None


async def retrain_if_due(
    db: Database,
    *,
    after_corrections: int,
    themes: list[ThemeDefinition] | None,
    data_dir: pathlib.Path,
    clock: Clock,
) -> str | None:
    """Train and store a new version when ``after_corrections`` or more corrections were made
    since the newest stored version; return its version, or None when none was due.

    The new version is stamped with the time the corrections were read, so a correction made
    while it trains counts towards the next one. When another process stored a version in the
    meantime, this one is dropped rather than stored over it."""
    if after_corrections <= 0:
        return None
    since = last_trained_at(data_dir)
    async with db.sessions() as session:
        new = await repository.count_corrections_since(session, since)
        if new < after_corrections:
            return None
        read_at = clock.now()
        examples = await load_corrections(session)
    if not examples:
        return None
    base = BuiltinClassifier(themes)
    log.info("classifier retraining: %d corrections since the last version, %d examples", new, len(examples))
    model = await asyncio.to_thread(train, examples, themes=base.themes, base=base)
    if last_trained_at(data_dir) != since:
        log.info("classifier retraining: another process stored a version meanwhile; this one is dropped")
        return None
    version = await asyncio.to_thread(save, model, data_dir, now=read_at)
    log.info("classifier retrained: %s stored; running roles switch to it at their next reload", version)
    return version
