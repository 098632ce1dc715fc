"""Waking the delivery worker when a transaction that queued deliveries, or changed the
webhook subscriptions, commits — in this process, and on PostgreSQL in any (shared.db.notify).

Without them the worker finds new deliveries at its next poll, and a new subscription when
it next reads the subscriptions.
"""

from __future__ import annotations

from npsloop.shared.db import CommitSignal, Database

# session.info flag (shared.db.signal_on_commit): this transaction queued deliveries.
DELIVERIES_ENQUEUED = "deliveries_enqueued"
# session.info flag: this transaction created or deleted a webhook subscription.
SUBSCRIPTIONS_CHANGED = "webhook_subscriptions_changed"


def delivery_signal(db: Database) -> CommitSignal:
    """What the delivery worker of ``db``'s process waits on between polls."""
    return db.signal(DELIVERIES_ENQUEUED)


def subscriptions_signal(db: Database) -> CommitSignal:
    """What tells the delivery worker of ``db``'s process to read the subscriptions again."""
    return db.signal(SUBSCRIPTIONS_CHANGED)
