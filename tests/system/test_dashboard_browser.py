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
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, playwright_or_skip
from tests.support.processes import free_port

pytestmark = pytest.mark.browser

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DEFAULT_POLICY = 'benchmarks:\n  - {name: "Industry average", nps: 32}\n'


class Server:
    """npsloop with every background role, served by uvicorn on a loopback port in a thread."""

    def __init__(self, tmp_path: Path, policy_text: str = DEFAULT_POLICY, **overrides: Any) -> None:
        self.url_db = f"sqlite+aiosqlite:///{tmp_path / 'npsloop.db'}"
        self.clock = ManualClock(T0)
        policy = tmp_path / "policy.yaml"
        policy.write_text(policy_text)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.settings = Settings(
            policy_file=policy,
            public_url=self.base,
            allow_private_webhook_urls=True,
            **overrides,
            database_url=self.url_db,
            data_dir=tmp_path / "data",
            environment="test",
            poll_interval_seconds=0.05,
            sla_check_interval_seconds=0.1,
            handler_retry_base_seconds=0.0,
        )
        self.admin_key = asyncio.run(self._prepare())
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
    outcome = {"customer_id": "linus-torvalds", "outcome": "churned", "revenue": 900, "currency": "EUR"}
    assert api.post("/v1/outcomes", json=outcome).status_code == 201
    # T0 + 44 h: Dennis's 24 h SLA is breached; Alan's and Ken's 48 h SLAs are due in 4 h.
    clock.advance(hours=17)
    _until(lambda: api.get("/v1/tasks", params={"breached": "true"}).json()["tasks"], "a breach")
    _until(lambda: "\nnpsloop_outbox_backlog 0.0" in api.get("/metrics").text, "every consumer to catch up")
    clock.advance(minutes=1)


def _open(section: Any) -> None:
    """Open a <details> section of the task pane unless it is open already; it stays open
    through the pane's refreshes (the page remembers it at the click)."""
    from playwright.sync_api import expect

    if section.get_attribute("open") is None:
        section.locator("summary").click()
    expect(section).to_have_attribute("open", "")


def _nps_text(value: float) -> str:
    """How the page writes an NPS: one decimal, a plus sign when above zero."""
    return f"{value:+.1f}" if value > 0 else f"{value:.1f}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with Server(tmp_path) as running:
        yield running


def test_dashboard_shows_the_api_numbers_and_resolves_a_task_in_chromium(server: Server) -> None:
    sync_playwright = playwright_or_skip()
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
            line = page.get_by_test_id("benchmark-line")
            assert (line.get_attribute("data-name"), line.get_attribute("data-nps")) == ("Industry average", "32")
            churned = page.locator("[data-testid=outcome-row][data-category=detractor] [data-outcome=churned]")
            assert churned.get_attribute("data-revenue") == "900" and "900 EUR" in churned.inner_text()
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


def test_alert_links_open_the_task_and_the_customer_after_sign_in_also_behind_a_proxy_path(server: Server) -> None:
    """The link an alert carries (<public url>/tasks/<id>) opens that task, after sign-in when the
    tab has no key; the task pane leads to the customer's story, which a search also finds."""
    sync_playwright = playwright_or_skip()
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    api = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=10)
    _seed(api, server.clock)
    dennis = api.get("/v1/tasks", params={"customer_id": "dennis-ritchie"}).json()["tasks"][0]
    proxy = _PathPrefixProxy(server.base, "/npsloop")

    with sync_playwright() as p, proxy:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            for base in (server.base, proxy.base + "/npsloop"):
                page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.route(
                    "**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort()
                )
                page.goto(f"{base}/tasks/{dennis['id']}")
                page.get_by_test_id("api-key").fill(server.admin_key)
                page.get_by_test_id("login-submit").click()
                detail = page.get_by_test_id("task-detail")
                expect(detail).to_be_visible()
                expect(detail.locator(f"[data-task-id='{dennis['id']}']")).to_be_visible()
                assert page.url == f"{base}/tasks/{dennis['id']}"
                page.screenshot(path=str(ARTIFACTS / "dashboard-task-link.png"), full_page=True)

                detail.get_by_test_id("task-customer-link").click()
                expect(page.get_by_test_id("customer-name")).to_have_text("Dennis Ritchie")
                assert page.url == f"{base}/customers/dennis-ritchie"
                story = api.get("/v1/customers/dennis-ritchie").json()
                responses = page.get_by_test_id("customer-responses").locator("li")
                assert responses.count() == len(story["responses"]) == 1
                tasks = page.get_by_test_id("customer-tasks").get_by_test_id("task-item")
                assert tasks.count() == 1 and tasks.first.get_attribute("data-task-id") == dennis["id"]
                page.screenshot(path=str(ARTIFACTS / "dashboard-customer.png"), full_page=True)

                # The search box finds a customer by email, in any case; an unknown id says so.
                page.get_by_test_id("customer-search").fill("ADA-LOVELACE@example.com")
                page.get_by_test_id("customer-search").press("Enter")
                expect(page.get_by_test_id("customer-name")).to_have_text("Ada Lovelace")
                assert page.get_by_test_id("customer-responses").locator("li").count() == 2
                page.goto(f"{base}/customers/nobody%2Fhere")  # a reload keeps the session's key
                expect(page.get_by_test_id("customer-missing")).to_contain_text("nobody/here")
                page.go_back()
                expect(page.get_by_test_id("customer-name")).to_have_text("Ada Lovelace")
                assert not errors, errors
        finally:
            browser.close()


class _PathPrefixProxy:
    """A reverse proxy that serves npsloop under /npsloop (and strips it), as a deployment might."""

    def __init__(self, upstream: str, prefix: str) -> None:
        self.upstream, self.prefix = upstream, prefix
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            assert scope["type"] == "http"
            raw = scope["raw_path"].decode()
            if not raw.startswith(prefix + "/"):
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b"outside the prefix"})
                return
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            query = ("?" + scope["query_string"].decode()) if scope["query_string"] else ""
            headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() != b"host"]
            async with httpx.AsyncClient() as client:
                reply = await client.request(
                    scope["method"], upstream + raw[len(prefix) :] + query, headers=headers, content=body
                )
            drop = {"content-length", "transfer-encoding", "content-encoding", "connection"}
            out = [(k.encode(), v.encode()) for k, v in reply.headers.items() if k.lower() not in drop]
            await send({"type": "http.response.start", "status": reply.status_code, "headers": out})
            await send({"type": "http.response.body", "body": reply.content})

        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="prefix-proxy", daemon=True)

    def __enter__(self) -> _PathPrefixProxy:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_a_customer_success_day_from_the_slack_alert_to_the_customers_inbox(tmp_path: Path) -> None:
    """The day the dashboard exists for: a detractor's Slack alert arrives; its link (after
    sign-in) shows the task with the customer's earlier answers; the lead reassigns it,
    corrects a theme and resolves it with a message; the customer's email arrives over SMTP;
    the customer's page shows the resolved task."""
    import json as jsonlib

    from aiosmtpd.controller import Controller

    from tests.support.receivers import HttpReceiver, SmtpInbox

    sync_playwright = playwright_or_skip()
    from playwright.sync_api import expect

    slack = HttpReceiver()
    inbox = SmtpInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    policy = f"""
channels:
  cs-slack: {{type: slack, url: "{slack.url}"}}
routing:
  - match: {{}}
    team: cs
    channel: cs-slack
"""
    try:
        with Server(tmp_path, policy, smtp_host="127.0.0.1", smtp_port=smtp.port) as server:
            api = httpx.Client(
                base_url=server.base, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=10
            )
            customer = {"id": "rosa-p", "name": "Rosa Parks", "email": "rosa@example.org", "account_id": "acct-12"}
            earlier = {"score": 8, "comment": "Good, a bit slow on Mondays", "customer": customer}
            earlier["responded_at"] = (T0 - timedelta(days=100)).isoformat()
            assert api.post("/v1/responses", json=earlier).status_code == 202
            detractor = {"score": 2, "comment": "The invoice export fails every time", "customer": customer}
            assert api.post("/v1/responses", json=detractor).status_code == 202
            alert = _until(lambda: next((r for r in slack.requests), None), "the Slack alert")
            blocks = jsonlib.loads(alert.body)["blocks"]
            link = next(b["elements"][0]["url"] for b in blocks if b["type"] == "actions")
            (task,) = api.get("/v1/tasks", params={"customer_id": "rosa-p"}).json()["tasks"]
            assert link == f"{server.base}/tasks/{task['id']}"

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
                try:
                    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
                    errors: list[str] = []
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.goto(link)
                    page.get_by_test_id("api-key").fill(server.admin_key)
                    page.get_by_test_id("login-submit").click()
                    detail = page.get_by_test_id("task-detail")
                    expect(detail.locator(f"[data-task-id='{task['id']}']")).to_be_visible()
                    page.screenshot(path=str(ARTIFACTS / "day-1-alert-link.png"), full_page=True)

                    detail.get_by_test_id("task-customer-link").click()
                    expect(page.get_by_test_id("customer-responses").locator("li")).to_have_count(2)
                    expect(page.get_by_test_id("customer-responses")).to_contain_text("a bit slow on Mondays")
                    page.screenshot(path=str(ARTIFACTS / "day-2-customer-story.png"), full_page=True)
                    page.go_back()
                    detail = page.get_by_test_id("task-detail")
                    expect(detail.locator(f"[data-task-id='{task['id']}']")).to_be_visible()

                    _open(detail.get_by_test_id("reassign-section"))
                    detail.get_by_test_id("task-assignee").fill("kim")
                    detail.get_by_test_id("task-reassign").click()
                    _until(lambda: api.get(f"/v1/tasks/{task['id']}").json()["assignee"] == "kim", "the reassignment")

                    detail = page.get_by_test_id("task-detail")
                    _open(detail.get_by_test_id("correct-section"))
                    for box in detail.get_by_test_id("correct-section").locator("input[type=checkbox]").all():
                        box.set_checked(box.get_attribute("value") == "pricing")
                    detail.get_by_test_id("task-sentiment").select_option("negative")
                    detail.get_by_test_id("task-correct").click()
                    expect(page.locator("#banner")).to_contain_text("Correction saved")
                    page.wait_for_load_state("networkidle")
                    response = api.get(f"/v1/responses/{task['response_id']}").json()
                    _until(
                        lambda: (
                            [t["id"] for t in api.get(f"/v1/responses/{task['response_id']}").json()["themes"]]
                            == ["pricing"]
                        ),
                        "the correction",
                    )
                    assert response["sentiment"] in ("negative", "neutral", "positive")

                    detail = page.get_by_test_id("task-detail")
                    _open(detail.get_by_test_id("message-section"))
                    detail.get_by_test_id("message-subject").fill("Your invoice export works again")
                    detail.get_by_test_id("message-body").fill("Hi Rosa,\n\nwe fixed the export on Tuesday.\n\nKim")
                    detail.get_by_test_id("task-outcome").select_option("resolved")
                    page.screenshot(path=str(ARTIFACTS / "day-3-resolve-with-message.png"), full_page=True)
                    detail.get_by_test_id("task-resolve").click()
                    expect(page.get_by_test_id("task-detail").get_by_test_id("task-status")).to_have_text(
                        "resolved — resolved"
                    )
                    try:
                        mail = _until(
                            lambda: next((m for m in inbox.messages if m["To"] == "rosa@example.org"), None),
                            "the customer's email",
                        )
                    except AssertionError:
                        raise AssertionError(
                            api.get("/v1/deliveries", params={"channel": "customer-email"}).text
                            + api.get(f"/v1/tasks/{task['id']}").text
                        ) from None
                    assert mail["Subject"] == "Your invoice export works again"

                    page.goto(f"{server.base}/customers/rosa-p")
                    tasks = page.get_by_test_id("customer-tasks").get_by_test_id("task-item")
                    expect(tasks).to_have_count(1)
                    expect(tasks.first).to_contain_text("resolved")
                    page.screenshot(path=str(ARTIFACTS / "day-4-customer-after.png"), full_page=True)
                    stored = api.get(f"/v1/tasks/{task['id']}").json()
                    kinds = [e["type"] for e in stored["events"]]
                    assert {"reassigned", "resolved", "customer_messaged"} <= set(kinds), kinds
                    assert not errors, errors
                finally:
                    browser.close()
    finally:
        smtp.stop()
        slack.close()


def test_the_inbox_pages_keeps_its_filters_in_the_address_and_a_task_key_sees_only_its_views(server: Server) -> None:
    sync_playwright = playwright_or_skip()
    from playwright.sync_api import expect

    api = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=10)
    batch = [
        {"score": 3, "comment": f"Problem number {i}", "customer": {"id": f"c-{i:03d}"}, "properties": {"plan": "pro"}}
        for i in range(60)
    ]
    assert api.post("/v1/responses/batch", json={"responses": batch}).json()["accepted"] == 60
    _until(lambda: len(api.get("/v1/tasks", params={"limit": 100}).json()["tasks"]) == 60, "sixty tasks")
    tasks_key = asyncio.run(_make_key(server, ["tasks:read", "tasks:write"]))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            page.goto(f"{server.base}/?status=open&team=cs")
            page.get_by_test_id("api-key").fill(tasks_key)
            page.get_by_test_id("login-submit").click()
            items = page.get_by_test_id("task-list").get_by_test_id("task-item")
            expect(items).to_have_count(50)  # one page
            assert page.get_by_test_id("filter-team").input_value() == "cs"
            assert not page.get_by_test_id("tab-overview").is_visible()  # no analytics:read
            assert page.get_by_test_id("tab-inbox").is_visible()
            assert not page.get_by_test_id("tab-sla").is_visible()  # the board is an analytics report
            assert not page.get_by_test_id("customer-search").is_visible()  # no responses:read
            page.get_by_test_id("inbox-more").click()
            expect(items).to_have_count(60)
            expect(page.get_by_test_id("inbox-more")).to_be_hidden()
            page.get_by_test_id("filter-status").select_option("resolved")
            expect(page.get_by_test_id("task-list")).to_contain_text("Inbox zero")
            assert "status=resolved" in page.url and "team=cs" in page.url
            page.screenshot(path=str(ARTIFACTS / "dashboard-inbox-tasks-key.png"), full_page=True)

            admin = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            admin.goto(server.base + "/")
            admin.get_by_test_id("api-key").fill(server.admin_key)
            admin.get_by_test_id("login-submit").click()
            expect(admin.locator("#group-by option[data-property=plan]")).to_have_count(1)
        finally:
            browser.close()


async def _make_key(server: Server, scopes: list[str]) -> str:
    db = Database(server.url_db)
    try:
        async with db.unit_of_work() as session:
            _, clear = await auth.create_key(session, name="cs-agent", scopes=scopes, clock=server.clock)
        return clear
    finally:
        await db.dispose()
