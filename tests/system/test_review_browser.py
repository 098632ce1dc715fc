"""The dashboard's Review view in real headless Chromium: a person corrects the comment the
classifier is least sure of, in one click, and the correction is stored.

Needs Debian's chromium and Playwright for Python (tests/support/browser.py skips with the
reason when either is missing, unless NPSLOOP_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, playwright_or_skip
from tests.system.test_dashboard_browser import Server, _until

pytestmark = pytest.mark.browser

# Invented comments: a detractor's praise (sentiment against the score), comments with themes
# near their threshold, and a promoter's plain thanks the classifier is sure of.
COMMENTS = [
    (2, "Wonderful people, brilliant and lovely, thank you so much"),
    (1, "The invoice was a bit odd this month"),
    (9, "The app is slow and it keeps crashing"),
    (8, "Reports could load faster"),
    (10, "Excellent, really happy"),
]


def test_a_person_corrects_the_least_certain_comment_from_the_review_view_in_chromium(tmp_path: Path) -> None:
    sync_playwright = playwright_or_skip()
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    with Server(tmp_path) as server:
        api = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=10)
        for i, (score, comment) in enumerate(COMMENTS):
            body = {"score": score, "comment": comment, "customer": {"id": f"customer-{i}"}}
            assert api.post("/v1/responses", json=body).status_code == 202
        queue = _until(
            # All of them: the view is compared with this list, so none may still be on its way.
            lambda: (
                (items := api.get("/v1/classifier/review-queue").json()["items"])
                and len(items) >= len(COMMENTS)
                and items
            ),
            "the classifier to read the comments",
        )
        first = queue[0]
        assert "sentiment disagrees with score" in first["reasons"]  # a comment against its score leads
        added = next(
            t for t in ("support_experience", "ease_of_use", "pricing") if t not in {x["id"] for x in first["themes"]}
        )

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            try:
                page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
                outside: list[str] = []

                def offline(route) -> None:  # the dashboard must work without the internet
                    if not route.request.url.startswith(server.base):
                        outside.append(route.request.url)
                        route.abort()
                    else:
                        route.continue_()

                page.route("**/*", offline)
                page.goto(server.base + "/")
                page.get_by_test_id("api-key").fill(server.admin_key)
                page.get_by_test_id("login-submit").click()
                page.get_by_test_id("tab-review").click()
                items = page.get_by_test_id("review-item")
                expect(items).to_have_count(len(queue))
                # The page lists the queue in the API's order, with the reasons.
                assert [items.nth(i).get_attribute("data-response-id") for i in range(len(queue))] == [
                    q["response_id"] for q in queue
                ]
                item = page.locator(f'[data-testid=review-item][data-response-id="{first["response_id"]}"]')
                expect(item.get_by_test_id("review-comment")).to_have_text(first["comment"])
                expect(item.get_by_test_id("review-reason").first).to_have_text("sentiment disagrees with score")
                page.screenshot(path=str(ARTIFACTS / "dashboard-review.png"), full_page=True)

                # Correct it: add a theme it lacks (which one the classifier missed depends on
                # the comment that leads the queue); the sentiment stands.
                save = item.get_by_test_id("review-save")
                expect(save).to_have_text("Confirm")
                item.get_by_test_id(f"review-theme-{added}").check()
                expect(save).to_have_text("Save correction")
                save.click()
                expect(item).to_have_count(0)
                expect(items).to_have_count(len(queue) - 1)
                expect(page.locator("#banner")).to_contain_text("correction wins")
                assert not errors, errors
                assert not outside, outside
            finally:
                browser.close()

        stored = api.get(f"/v1/responses/{first['response_id']}").json()
        assert {t["id"] for t in stored["themes"]} == {t["id"] for t in first["themes"]} | {added}
        assert stored["sentiment"] == first["sentiment"]
        after = [i["response_id"] for i in api.get("/v1/classifier/review-queue").json()["items"]]
        assert first["response_id"] not in after and len(after) == len(queue) - 1
