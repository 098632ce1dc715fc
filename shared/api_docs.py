"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc``, with nothing from the internet.

FastAPI's own pages load their scripts, styles, favicon and fonts from CDNs, so without
internet (air-gapped installs, a locked-down network) they are blank. These serve the
same pages from assets shipped in the ``fastapi-offline`` wheel (Swagger UI, Apache-2.0;
Redoc, MIT; the package itself MIT), mounted under ``/docs/assets``. Redoc's sidebar shows
its vendor's logo from a CDN whatever the options, so the copy served points that image at a
local one; a Content-Security-Policy keeps the browser on this origin all the same.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
REDOC_VENDOR_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# The pages' own inline bootstrap script and the UIs' inline styles need 'unsafe-inline';
# Redoc builds its search worker from a blob.
SAME_ORIGIN_ONLY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'self'",
    )
)


@cache
def _redoc_script() -> bytes:
    shipped = (files("fastapi_offline") / "static" / "redoc.standalone.js").read_bytes()
    return shipped.replace(REDOC_VENDOR_LOGO, f"{ASSETS_PATH}/favicon.png".encode())


def _same_origin(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page


def serve_api_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add the two pages to an app created with ``docs_url=None, redoc_url=None``."""
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_PATH, StaticFiles(directory=str(assets)), name="api-docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _same_origin(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - API reference",
                oauth2_redirect_url=root + oauth2_redirect_url,
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _same_origin(get_swagger_ui_oauth2_redirect_html())

    @app.get(f"{redoc_url}/redoc.js", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(_redoc_script(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _same_origin(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - API reference",
                redoc_js_url=f"{root}{redoc_url}/redoc.js",
                redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )
