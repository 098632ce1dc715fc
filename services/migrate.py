"""Run Alembic migrations (shipped inside the package) on a Database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from npsloop.shared.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Held for the whole upgrade transaction (any constant; the same in every process).
_MIGRATION_LOCK = 7_302_215_772


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(db: Database, revision: str = "head") -> bool:
    """Bring the schema to ``revision``; safe to run on every start, and from several
    processes at once: every role migrates when it starts, so roles started together on
    an empty database would otherwise each create the schema and all but one fail.

    On PostgreSQL the upgrade runs under a transaction-scoped advisory lock: the first
    process migrates, the others wait for its commit and find nothing left to do (DDL is
    transactional there, so nobody sees half a schema). The embedded SQLite default runs
    in one process; roles sharing one SQLite file should run ``npsloop db upgrade`` first.

    Returns True when the database held no npsloop schema before (it was just created).
    """
    config = alembic_config()

    def run(connection: Connection) -> bool:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _MIGRATION_LOCK})
        empty = MigrationContext.configure(connection).get_current_revision() is None
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        return empty

    async with db.engine.begin() as connection:
        return await connection.run_sync(run)
