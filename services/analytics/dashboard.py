"""The web dashboard: static HTML/JS/CSS shipped in the package, served at ``/``.

No CDN and no build step: it works offline and on an air-gapped install. The page
talks to the same /v1 API with the API key a person types in (kept in sessionStorage).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

DASHBOARD_DIR = Path(__file__).parent / "dashboard"

# Only our own files may run or be fetched; no framing (clickjacking) and no referrer leaks.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


class DashboardAssets(StaticFiles):
    """The dashboard's scripts and styles, with the same headers as the page."""

    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def assets() -> DashboardAssets:
    return DashboardAssets(directory=DASHBOARD_DIR)
