"""Fixtures that build real databases: SQLite files and a PostgreSQL database per run.

Storage-dependent tests take the ``database_url`` fixture and run once per backend.
PostgreSQL is skipped with a visible reason when it cannot be reached, unless
NPSLOOP_REQUIRE_POSTGRES=1 (CI) makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from npsloop.services.app import create_app
from npsloop.services.migrate import upgrade
from npsloop.services.runtime import Runtime
from npsloop.services.schema import metadata
from npsloop.shared import auth
from npsloop.shared.clock import ManualClock
from npsloop.shared.db import Database
from npsloop.shared.settings import Settings
from tests.support.event_contract import assert_logged_events_conform
from tests.support.processes import free_port
from tests.support.receivers import HttpReceiver, SlackReceiver, SmtpInbox

SYSTEM_TESTS = Path(__file__).resolve().parent / "system"
PG_ADMIN_DSN = os.environ.get("NPSLOOP_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


def run_blocking(make_coro: Callable[[], Awaitable[object]]) -> object:
    """Run a coroutine to completion on its own loop in a thread: session fixtures may be
    first requested from inside a test's running loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/system/ is a ``system`` test and every test that takes a Kafka
    broker a ``kafka`` one, so the folder and the fixture decide, not a mark someone forgot."""
    for item in items:
        if item.path.is_relative_to(SYSTEM_TESTS):
            item.add_marker(pytest.mark.system)
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


def _require_postgres() -> bool:
    return os.environ.get("NPSLOOP_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test copies it (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"

    async def build() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        await db.dispose()

    run_blocking(build)
    return path


@contextlib.contextmanager
def scratch_postgres_database(prefix: str) -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its plain postgresql:// URL, drop it after.

    Skips (or fails, with NPSLOOP_REQUIRE_POSTGRES=1) when PostgreSQL cannot be reached.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        run_blocking(lambda: admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}"
        if _require_postgres():
            pytest.fail(message + " (NPSLOOP_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    try:
        yield f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        run_blocking(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated with the users' migrations, dropped at the end."""
    with scratch_postgres_database("npsloop_test") as plain_url:
        url = plain_url.replace("postgresql://", "postgresql+asyncpg://", 1)

        async def migrate() -> None:
            db = Database(url)
            await upgrade(db)
            await db.dispose()

        run_blocking(migrate)
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on ``backend``, private to this test."""
    if backend == "sqlite":
        path = tmp_path / "npsloop.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    db = Database(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await db.dispose()
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        environment="test",
        allow_private_webhook_urls=True,
        handler_retry_base_seconds=0.0,
        poll_interval_seconds=0.05,
    )


@pytest.fixture
async def runtime(settings: Settings, clock: ManualClock, request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    """npsloop's runtime on the test's database; when the test ends, every event it made
    npsloop write is checked against asyncapi.yaml (tests/support/event_contract.py)."""
    rt = Runtime.build(settings, clock=clock)
    yield rt
    await rt.close()
    if request.node.get_closest_marker("hand_made_events") is None:
        await assert_logged_events_conform(settings.database_url)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The real ASGI app in-process; background work is driven by ``pump``."""
    app = create_app(runtime, worker_roles=())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://npsloop.test") as c:
        yield c


MakeKey = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def make_key(runtime: Runtime) -> MakeKey:
    """Create a real API key; returns the Authorization header for it."""

    async def make(*scopes: str, name: str = "test-app") -> dict[str, str]:
        async with runtime.db.unit_of_work() as session:
            _, clear = await auth.create_key(session, name=name, scopes=list(scopes or ("admin",)), clock=runtime.clock)
        return {"Authorization": f"Bearer {clear}"}

    return make


@pytest.fixture
def pump(runtime: Runtime) -> Callable[[], Awaitable[int]]:
    """Run every consumer until the log is drained; returns how many rounds did work."""

    async def drain() -> int:
        rounds = 0
        subs = runtime.subscriptions()
        while True:
            worked = False
            for sub in subs:
                worked = await runtime.transport.drain_once(sub) or worked
            if not worked:
                return rounds
            rounds += 1

    return drain


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    """A local Slack incoming webhook that checks every message is valid Block Kit."""
    receiver = SlackReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    """A local webhook receiver that records every POST."""
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp() -> Iterator[Controller]:
    """A local aiosmtpd server; what it received is in ``smtp.inbox.messages``."""
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.inbox = inbox
    yield controller
    controller.stop()
