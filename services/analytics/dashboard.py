"""The web dashboard: static HTML/JS/CSS shipped in the package, served at ``/``.

No CDN and no build step: it works offline and on an air-gapped install. The page
talks to the same /v1 API with the API key a person types in (kept in sessionStorage).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DASHBOARD_DIR = Path(__file__).parent / "dashboard"

# Only our own files may run or be fetched; no framing (clickjacking) and no referrer leaks.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


# The page's addresses: alerts and digests link to a task or a customer. Its assets and API
# calls resolve against <base href>, relative to the page itself, so every address works
# behind a reverse proxy that serves npsloop under a path of its own (NPSLOOP_PUBLIC_URL).
PAGE = (DASHBOARD_DIR / "index.html").read_text(encoding="utf-8")
BASE_TAG = '<base href="./">'
if BASE_TAG not in PAGE:  # pragma: no cover - a packaging mistake, caught at import
    raise RuntimeError("dashboard/index.html lost its <base> tag")


def _page(base: str) -> HTMLResponse:
    return HTMLResponse(PAGE.replace(BASE_TAG, f'<base href="{base}">', 1), headers=SECURITY_HEADERS)


@router.get("/")
async def dashboard() -> HTMLResponse:
    return _page("./")


def _up_to_root(request: Request) -> str:
    # One "../" per segment below the root, counted on the path as the browser sent it.
    raw = request.scope.get("raw_path") or request.url.path.encode()
    return "../" * max(1, raw.split(b"?", 1)[0].count(b"/") - 1)


@router.get("/tasks/{task_id}")
async def dashboard_task(task_id: str, request: Request) -> HTMLResponse:
    """The dashboard opened on one task (after sign-in when the tab has no key yet)."""
    return _page(_up_to_root(request))


@router.get("/customers/{customer_id:path}")
async def dashboard_customer(customer_id: str, request: Request) -> HTMLResponse:
    """The dashboard opened on one customer's story (ids may hold any character, encoded)."""
    return _page(_up_to_root(request))


class DashboardAssets(StaticFiles):
    """The dashboard's scripts and styles, with the same headers as the page."""

    async def get_response(self, path, scope):  # type: ignore[override]
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def assets() -> DashboardAssets:
    return DashboardAssets(directory=DASHBOARD_DIR)
