"""Typed errors that become RFC 9457 ``application/problem+json`` responses.

No handler ever puts a stack trace, SQL or a secret in a response body: unexpected
errors are logged with their trace and answered with a generic 500.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("npsloop.api")

PROBLEM_JSON = "application/problem+json"

# Reason phrases as RFC 9110 names them (Python's http.HTTPStatus still has RFC 7231's
# "Request Entity Too Large" and WebDAV's "Unprocessable Entity" on 3.11).
TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def title_for(status: int) -> str:
    """The problem ``title`` for ``status``: RFC 9110's reason phrase."""
    if status in TITLES:
        return TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Problem(Exception):
    status = 500
    title = TITLES[500]

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra


class BadRequest(Problem):
    status, title = 400, TITLES[400]


class Unauthorized(Problem):
    status, title = 401, TITLES[401]


class Forbidden(Problem):
    status, title = 403, TITLES[403]


class NotFound(Problem):
    status, title = 404, TITLES[404]


class Conflict(Problem):
    status, title = 409, TITLES[409]


class ContentTooLarge(Problem):
    status, title = 413, TITLES[413]


class UnprocessableContent(Problem):
    status, title = 422, TITLES[422]


class TooManyRequests(Problem):
    status, title = 429, TITLES[429]


class ServiceUnavailable(Problem):
    status, title = 503, TITLES[503]


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        errors.append(
            {"field": ".".join(loc) or "body", "message": error.get("msg", "invalid"), "type": error.get("type")}
        )
    return errors


def is_unavailable(exc: BaseException) -> bool:
    """A lost or refused database connection, a pool or connect timeout: retryable, not a bug."""
    if isinstance(exc, (sa_exc.TimeoutError, OSError, TimeoutError)):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc.orig, (OSError, TimeoutError)):
        return True
    if getattr(exc.orig, "sqlstate", None) in _POSTGRES_OUTAGES:
        return True
    if not isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        # SQLite also calls a bad query "OperationalError": only these are outages.
        return any(m in str(exc.orig).lower() for m in _SQLITE_OUTAGES)
    return True


_SQLITE_OUTAGES = ("locked", "busy", "unable to open", "disk i/o", "readonly")
# PostgreSQL SQLSTATEs that say "not now" rather than "bad query": statement timeout
# (query_canceled), lock_not_available, and the server shutting down or starting up.
_POSTGRES_OUTAGES = frozenset({"57014", "55P03", "57P01", "57P02", "57P03"})


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            errors=exc.errors,
            headers=exc.headers,
            instance=request.url.path,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(400, TITLES[400], "the request body is not valid JSON", instance=request.url.path)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, TITLES[422], summary, errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = title_for(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(
            exc.status_code, title, detail, headers=getattr(exc, "headers", None), instance=request.url.path
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_unavailable(exc):
            return await _unexpected(request, exc)
        # Nothing was acknowledged: the unit of work rolled back or never began.
        log.warning("database unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
        return problem_response(
            503,
            TITLES[503],
            "the database is not reachable; retry shortly",
            headers={"Retry-After": "2"},
            instance=request.url.path,
        )

    # Registered per class (not under Exception) so they are answered like any handled
    # error instead of being re-raised to the server after the 500 page.
    for unavailable in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, TimeoutError):
        app.add_exception_handler(unavailable, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(
            500, TITLES[500], "an unexpected error occurred; it has been logged", instance=request.url.path
        )


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; ``errors`` names each invalid field and why.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
    },
}
_AUTH_PROBLEMS = {
    "401": "No API key, or an unknown or revoked one",
    "403": "The API key lacks the scope this operation needs",
    "429": "The API key is over its request rate (see Retry-After)",
}
_BODY_PROBLEMS = {
    "400": "The body is not valid JSON",
    "413": "The body is over the size limit (NPSLOOP_MAX_BODY_BYTES)",
}
_UNAVAILABLE = "The database is not reachable; retry after Retry-After"


def not_found(what: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers 404 when no ``what`` has the id in its path."""
    return {404: {"description": f"No {what} with this id"}}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Make /openapi.json list every error an operation answers, each as
    ``application/problem+json`` with the ``Problem`` schema.

    Added where the app answers them for every such operation: 400 (malformed JSON) and 413
    with a body, 401/403/429 with a key, 503 when the database is down. Answers particular
    to an operation (404 for an unknown id, 409, a 400 for a bad cursor) are declared on its
    route with ``responses=`` (see :func:`not_found`); here they get the Problem schema too.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if responses is None:
                continue
            if "422" in responses:
                responses["422"] = {"description": "Invalid input: which field, and why"}
            if "requestBody" in operation:
                for status, description in _BODY_PROBLEMS.items():
                    responses.setdefault(status, {"description": description})
            if operation.get("security"):
                for status, description in _AUTH_PROBLEMS.items():
                    responses.setdefault(status, {"description": description})
            if path.startswith("/v1/"):
                responses.setdefault("503", {"description": _UNAVAILABLE})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = content
            operation["responses"] = dict(sorted(responses.items()))
    # FastAPI's validation schemas, unless something other than themselves still points at them
    defaults = ("HTTPValidationError", "ValidationError")
    elsewhere = json.dumps([schema.get("paths"), {k: v for k, v in components.items() if k not in defaults}])
    for name in defaults:
        if f'"#/components/schemas/{name}"' not in elsewhere:
            components.pop(name, None)
    return schema
