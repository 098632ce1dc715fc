"""The migrations users run produce exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from npsloop.services.schema import metadata
from npsloop.shared.db import Database


async def test_migrated_schema_matches_the_models(database_url):
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:

            def diff(sync_conn):
                context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
                return compare_metadata(context, metadata)

            differences = await conn.run_sync(diff)
    finally:
        await db.dispose()
    assert differences == []
