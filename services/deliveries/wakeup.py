"""Waking this process's delivery worker when a transaction that queued deliveries commits.

Without it the worker finds new deliveries at its next poll; other processes' still are.
"""

from __future__ import annotations

from npsloop.shared.db import CommitSignal, Database

# session.info flag (shared.db.signal_on_commit): this transaction queued deliveries.
DELIVERIES_ENQUEUED = "deliveries_enqueued"


def delivery_signal(db: Database) -> CommitSignal:
    """What the delivery worker of ``db``'s process waits on between polls."""
    return db.signal(DELIVERIES_ENQUEUED)
