"""The dashboard in real headless Chromium against a real npsloop server.

Seeds responses through the API (the background workers classify them and open tasks),
signs in with an API key, resolves a task through the page, checks that the numbers the
page shows are the API's, and saves screenshots to ``test-artifacts/``.

Needs Debian's chromium (``scripts/setup-system-packages``) and Playwright for Python (only its
driver: the browser is the system one). Skipped with the reason when either is missing,
unless NPSLOOP_REQUIRE_BROWSER=1 makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from npsloop.services.app import create_app
from npsloop.services.migrate import upgrade
from npsloop.services.runtime import Runtime
from npsloop.shared import auth
from npsloop.shared.clock import ManualClock
from npsloop.shared.db import Database
from npsloop.shared.settings import Settings
from tests.support.processes import free_port

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("NPSLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _browser_or_skip() -> Any:
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason, sync_playwright = "Playwright for Python is not installed (pip install playwright)", None
    if reason is None and not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        reason = f"no Chromium at {CHROMIUM}: run scripts/setup-system-packages"
    if reason:
        if os.environ.get("NPSLOOP_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (NPSLOOP_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return sync_playwright


class Server:
    """npsloop with every background role, served by uvicorn on a loopback port in a thread."""

    def __init__(self, tmp_path: Path) -> None:
        self.url_db = f"sqlite+aiosqlite:///{tmp_path / 'npsloop.db'}"
        self.clock = ManualClock(T0)
        self.settings = Settings(
            database_url=self.url_db,
            data_dir=tmp_path / "data",
            environment="test",
            poll_interval_seconds=0.05,
            sla_check_interval_seconds=0.1,
            handler_retry_base_seconds=0.0,
        )
        self.admin_key = asyncio.run(self._prepare())
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        runtime = Runtime.build(self.settings, clock=self.clock)
        config = uvicorn.Config(
            create_app(runtime), host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="npsloop-test-server", daemon=True)

    async def _prepare(self) -> str:
        db = Database(self.url_db)
        try:
            await upgrade(db)
            async with db.unit_of_work() as session:
                _, clear = await auth.create_key(session, name="cs-lead", scopes=["admin"], clock=self.clock)
            return clear
        finally:
            await db.dispose()

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "npsloop did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def _until(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _seed(api: httpx.Client, clock: ManualClock) -> None:
    def post(score: int, customer: str, segment: str, comment: str | None) -> None:
        body = {
            "score": score,
            "comment": comment,
            "responded_at": clock.now().isoformat(),
            "customer": {
                "id": customer,
                "segment": segment,
                "name": customer.replace("-", " ").title(),
                "email": f"{customer}@example.com",
            },
            "survey": {"touchpoint": "support", "kind": "transactional", "channel": "email"},
        }
        assert api.post("/v1/responses", json=body).status_code == 202

    # Six weeks of imported history (no detractors, so no old tasks crowd the inbox).
    history = [
        {
            "score": (7, 8, 9, 10, 10, 9, 8)[(w + i) % 7],
            "responded_at": (T0 - timedelta(weeks=w, days=i % 5)).isoformat(),
            "customer": {"id": f"hist-{w}-{i}", "segment": ("smb", "enterprise")[i % 2]},
            "survey": {"touchpoint": "renewal", "kind": "relationship"},
        }
        for w in range(1, 7)
        for i in range(4 + w % 3)
    ]
    assert api.post("/v1/responses/batch", json={"responses": history}).json()["accepted"] == len(history)
    week = [  # (days after T0, score, customer, segment, comment)
        (0, 2, "ada-lovelace", "enterprise", "The app keeps crashing and support never answers"),
        (0, 5, "alan-turing", "smb", "Too expensive for what it does"),
        (0, 10, "grace-hopper", "smb", "Love how easy it is to use"),
        (0, 9, "edsger-dijkstra", "enterprise", "Fast and reliable"),
        (0, 8, "barbara-liskov", "smb", "Good, but missing an export feature"),
        (0, 6, "ken-thompson", "smb", "Onboarding emails were confusing"),
        (0, 3, "dennis-ritchie", "enterprise", "Slow, slow, slow. The dashboard takes ages to load"),
        (0, 10, "margaret-hamilton", "enterprise", "Excellent support team, solved my issue in minutes"),
    ]
    for _, score, customer, segment, comment in week:
        post(score, customer, segment, comment)
    _until(lambda: len(api.get("/v1/tasks", params={"status": "open"}).json()["tasks"]) == 4, "four tasks")
    # Ada's task is closed by phone, and she answers again as a promoter a day later.
    ada = api.get("/v1/tasks", params={"customer_id": "ada-lovelace"}).json()["tasks"][0]
    clock.advance(hours=3)
    assert (
        api.post(f"/v1/tasks/{ada['id']}/resolve", json={"outcome": "resolved", "note": "Called; fixed"}).status_code
        == 200
    )
    clock.advance(hours=24)
    post(9, "ada-lovelace", "enterprise", "Thanks for fixing it so quickly")
    for score, customer, segment, comment in (
        (1, "linus-torvalds", "smb", "Billing charged me twice"),
        (7, "guido-van-rossum", "smb", None),
        (10, "tim-berners-lee", "smb", "Great"),
    ):
        post(score, customer, segment, comment)
    # T0 + 44 h: Dennis's 24 h SLA is breached; Alan's and Ken's 48 h SLAs are due in 4 h.
    clock.advance(hours=17)
    _until(lambda: api.get("/v1/tasks", params={"breached": "true"}).json()["tasks"], "a breach")
    _until(lambda: "\nnpsloop_outbox_backlog 0.0" in api.get("/metrics").text, "every consumer to catch up")
    clock.advance(minutes=1)


def _nps_text(value: float) -> str:
    """How the page writes an NPS: one decimal, a plus sign when above zero."""
    return f"{value:+.1f}" if value > 0 else f"{value:.1f}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with Server(tmp_path) as running:
        yield running


def test_dashboard_shows_the_api_numbers_and_resolves_a_task_in_chromium(server: Server) -> None:
    sync_playwright = _browser_or_skip()
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    api = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=10)
    _seed(api, server.clock)
    nps = api.get("/v1/nps").json()["overall"]
    segments = {g["segment"]: g for g in api.get("/v1/nps", params={"group_by": "segment"}).json()["groups"]}
    followup = api.get("/v1/analytics/followup").json()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            laptop = browser.new_context(viewport={"width": 1366, "height": 900})
            page = laptop.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(server.base + "/")
            page.get_by_test_id("api-key").fill(server.admin_key)
            page.get_by_test_id("login-submit").click()
            kpi = page.get_by_test_id("kpi-nps")
            expect(kpi).not_to_have_text("–")

            # The overview shows exactly what the API computes.
            assert kpi.inner_text() == _nps_text(nps["nps"])
            assert page.get_by_test_id("kpi-moe").inner_text() == f"{nps['margin_of_error']:.1f}"
            assert page.get_by_test_id("kpi-responses").inner_text() == str(nps["total"])
            assert page.get_by_test_id("kpi-sla").inner_text() == f"{followup['sla']['compliance'] * 100:.1f}%"
            assert page.get_by_test_id("kpi-recovery").inner_text() == f"{followup['recovery']['rate'] * 100:.1f}%"
            rows = page.get_by_test_id("group-row")
            shown = {
                rows.nth(i).get_attribute("data-key"): float(rows.nth(i).get_attribute("data-nps"))
                for i in range(rows.count())
            }
            assert shown == {k: g["nps"] for k, g in segments.items()}
            assert page.get_by_test_id("trend-point").count() >= 1
            assert page.locator("#trend-chart polygon.band").count() >= 1  # the margin-of-error band
            assert page.get_by_test_id("theme-row").count() >= 1
            assert page.evaluate("sessionStorage.getItem('npsloop.apiKey')") == server.admin_key
            assert page.evaluate("localStorage.length") == 0 and "npsloop" not in page.evaluate("document.cookie")
            page.screenshot(path=str(ARTIFACTS / "dashboard-overview-laptop.png"), full_page=True)

            # The SLA board agrees with the API.
            page.get_by_test_id("tab-sla").click()
            expect(page.get_by_test_id("sla-breached")).not_to_have_text("–")
            board = followup["sla_board"]
            assert page.get_by_test_id("sla-breached").inner_text() == str(board["breached"]) == "1"
            assert page.get_by_test_id("sla-due-soon").inner_text() == str(board["due_soon"]) == "2"
            page.get_by_test_id("breached-list").get_by_test_id("task-item").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "dashboard-sla-board-laptop.png"), full_page=True)

            # Resolve Dennis's breached task from the inbox: note, outcome, resolve.
            page.get_by_test_id("tab-inbox").click()
            dennis = api.get("/v1/tasks", params={"customer_id": "dennis-ritchie"}).json()["tasks"][0]
            item = page.get_by_test_id("task-list").locator(f"[data-task-id='{dennis['id']}']")
            item.click()
            detail = page.get_by_test_id("task-detail")
            detail.get_by_test_id("task-note").fill("Apologised; performance fix ships Friday")
            detail.get_by_test_id("task-add-note").click()
            expect(detail.get_by_test_id("task-timeline")).to_contain_text("Friday")
            detail.get_by_test_id("task-outcome").select_option("contacted")
            page.screenshot(path=str(ARTIFACTS / "dashboard-inbox-laptop.png"), full_page=True)
            detail.get_by_test_id("task-resolve").click()
            expect(detail.get_by_test_id("task-status")).to_have_text("resolved — contacted")
            stored = api.get(f"/v1/tasks/{dennis['id']}").json()
            assert (stored["status"], stored["outcome"]) == ("resolved", "contacted")
            assert [e["type"] for e in stored["events"]][-2:] == ["note", "resolved"]
            assert stored["events"][-1]["actor"] == "cs-lead"
            page.screenshot(path=str(ARTIFACTS / "dashboard-task-resolved-laptop.png"), full_page=True)
            assert not errors, errors

            # A phone: the same numbers, one column, the task opens over the list.
            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
            )
            mobile = phone.new_page()
            mobile.goto(server.base + "/")
            assert mobile.get_by_test_id("api-key").is_visible()  # a new session starts signed out
            mobile.get_by_test_id("api-key").fill(server.admin_key)
            mobile.get_by_test_id("login-submit").click()
            expect(mobile.get_by_test_id("kpi-nps")).not_to_have_text("–")
            assert mobile.get_by_test_id("kpi-nps").inner_text() == _nps_text(nps["nps"])
            assert mobile.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth + 1"
            )  # no sideways scroll
            mobile.screenshot(path=str(ARTIFACTS / "dashboard-overview-phone.png"), full_page=True)
            mobile.get_by_test_id("tab-inbox").click()
            mobile.get_by_test_id("task-list").get_by_test_id("task-item").first.click()
            mobile.get_by_test_id("task-detail").wait_for()
            mobile.screenshot(path=str(ARTIFACTS / "dashboard-task-phone.png"))
            mobile.get_by_test_id("task-close").click()  # the detail covers the screen until closed
            mobile.get_by_test_id("logout").click()
            assert mobile.evaluate("sessionStorage.getItem('npsloop.apiKey')") is None
        finally:
            browser.close()
    api.close()
