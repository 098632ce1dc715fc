"""/docs (Swagger UI) and /redoc render every operation in real headless Chromium, offline.

Every request the pages make that would leave 127.0.0.1 is aborted (Playwright routing)
and recorded; the test fails if there was one. Screenshots go to ``test-artifacts/``.
Needs Debian's chromium and Playwright's driver; skipped with the reason when either is
missing, unless NPSLOOP_REQUIRE_BROWSER=1 (CI) makes that a failure.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from npsloop.services.app import create_app
from npsloop.services.migrate import upgrade
from npsloop.services.runtime import Runtime
from npsloop.shared.db import Database
from npsloop.shared.settings import Settings
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, playwright_or_skip

pytestmark = pytest.mark.browser


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    """The API (no background roles) served by uvicorn on a loopback port in a thread."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'npsloop.db'}", data_dir=tmp_path / "data", environment="test"
    )

    async def migrate() -> None:
        db = Database(settings.database_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(migrate())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(Runtime.build(settings), worker_roles=())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="npsloop-docs-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "npsloop did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_docs_and_redoc_show_every_operation_without_leaving_the_machine(base_url: str) -> None:
    sync_playwright = playwright_or_skip()
    from playwright.sync_api import expect

    document = httpx.get(base_url + "/openapi.json", timeout=10).json()
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    left_the_machine: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            left_the_machine.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            context.route("**/*", only_loopback)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on(
                "request",
                lambda request: (
                    left_the_machine.append(request.url)
                    if urlsplit(request.url).hostname not in ("127.0.0.1", None)
                    else None
                ),
            )

            page.goto(base_url + "/docs")
            blocks = page.locator(".opblock")
            expect(blocks.first).to_be_visible(timeout=20_000)
            expect(blocks).to_have_count(len(operations))
            shown = {
                (blocks.nth(i).locator(".opblock-summary-method").inner_text().strip(), path)
                for i in range(blocks.count())
                for path in [blocks.nth(i).locator(".opblock-summary-path").get_attribute("data-path")]
            }
            assert shown == set(operations)
            page.screenshot(path=str(ARTIFACTS / "api-docs-swagger-ui.png"), full_page=False)

            page.goto(base_url + "/redoc")
            sections = page.locator("[data-section-id^='operation/']")
            expect(sections.first).to_be_attached(timeout=20_000)
            expect(sections).to_have_count(len(operations))
            expect(page.get_by_text("/v1/responses/{response_id}").first).to_be_attached()
            page.screenshot(path=str(ARTIFACTS / "api-docs-redoc.png"), full_page=False)
        finally:
            browser.close()
    assert left_the_machine == [], f"the pages tried to reach other hosts: {sorted(set(left_the_machine))}"
    assert errors == [], errors
