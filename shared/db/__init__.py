"""Database access for every service: models' base and column types, bulk inserts, the engine.

Importers use this package's names (``from npsloop.shared.db import Database``); the
modules behind it are split by responsibility:

- ``base``: the declarative base, naming convention and column types (UTC, JSON text);
- ``bulk``: :class:`BulkInsert`, many rows in one round trip on both dialects;
- ``write_slot``: :class:`WriterQueue`, SQLite's single write slot shared out in asyncio;
- ``signals``: commit signals that wake in-process waiters;
- ``engine``: :class:`Database` — engine, unit-of-work sessions, SQLite pragmas.
"""

from npsloop.shared.db.base import (
    NAMING_CONVENTION,
    Base,
    BigIntPK,
    JSONText,
    UTCDateTime,
    json_text,
    stored_datetime,
)
from npsloop.shared.db.bulk import BulkInsert
from npsloop.shared.db.engine import CONNECT_TIMEOUT_SECONDS, Database, SessionFactory
from npsloop.shared.db.lists import among
from npsloop.shared.db.signals import EVENTS_APPENDED, CommitSignal, events_appended_to, raised, signal_on_commit
from npsloop.shared.db.write_slot import WriterQueue

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "EVENTS_APPENDED",
    "NAMING_CONVENTION",
    "Base",
    "BigIntPK",
    "BulkInsert",
    "CommitSignal",
    "Database",
    "JSONText",
    "SessionFactory",
    "UTCDateTime",
    "WriterQueue",
    "among",
    "events_appended_to",
    "json_text",
    "raised",
    "signal_on_commit",
    "stored_datetime",
]
