"""HTTP plumbing shared by every service's API: auth, body limit, request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from npsloop.shared import auth
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database
from npsloop.shared.observability import metrics
from npsloop.shared.problems import TITLES, Forbidden, TooManyRequests, Unauthorized, problem_response
from npsloop.shared.rate_limit import RateLimiter, retry_after_header


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


DbDep = Annotated[Database, Depends(get_db)]
ClockDep = Annotated[Clock, Depends(get_clock)]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="npsloop"'}
# Parses "Authorization: Bearer <key>" and, as a Security dependency, puts the scheme and each
# operation's requirement in /openapi.json; a missing or malformed header is answered by us (401
# problem+json with a challenge), not by FastAPI's plain 403.
_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from `npsloop keys create --name NAME --scopes SCOPES`.",
)


def require(scope: str, *, revocation_checked_by_caller: bool = False) -> Callable[..., Awaitable[auth.Principal]]:
    """A dependency that authenticates the bearer key and checks one scope.

    With ``revocation_checked_by_caller`` the key is verified from an in-process cache and
    the endpoint must confirm it is not revoked inside its own unit of work.
    """
    return _key_check((scope,), revocation_checked_by_caller)


def require_any(*scopes: str) -> Callable[..., Awaitable[auth.Principal]]:
    """Like ``require``, but any one of ``scopes`` will do (an app asking may read or write responses)."""
    return _key_check(scopes, False)


def _key_check(scopes: tuple[str, ...], revocation_checked_by_caller: bool) -> Callable[..., Awaitable[auth.Principal]]:
    # /openapi.json lists an operation's scope; OpenAPI reads a list as "all of", so an
    # any-of check lists none (the endpoint's description names them).
    documented = list(scopes) if len(scopes) == 1 else []

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Security(_BEARER, scopes=documented)
    ) -> auth.Principal:
        presented = (credentials.credentials if credentials is not None else "").strip()
        if not presented:
            raise Unauthorized("send an API key as 'Authorization: Bearer <key>'", headers=_CHALLENGE)
        db: Database = request.app.state.db
        if revocation_checked_by_caller:
            principal = await request.app.state.key_cache.authenticate(db.sessions, presented)
        else:
            async with db.sessions() as session:
                principal = await auth.authenticate(session, presented)
        if principal is None:
            raise Unauthorized("the API key is unknown or revoked", headers=_CHALLENGE)
        if not any(principal.allows(scope) for scope in scopes):
            raise Forbidden(
                f"this API key lacks the '{scopes[0]}' scope"
                if len(scopes) == 1
                else f"this API key lacks one of the scopes {', '.join(scopes)}"
            )
        wait = rate_limiter(request.app.state).acquire(principal.key_id)
        if wait > 0:
            raise TooManyRequests(
                "this API key is over its request rate; retry after the given seconds",
                headers={"Retry-After": retry_after_header(wait)},
            )
        request.state.principal = principal
        return principal

    dependency.__name__ = "require_" + "_or_".join(scope.replace(":", "_") for scope in scopes)
    return dependency


def rate_limiter(state: Any) -> RateLimiter:
    """The app's per-key limiter (one per process), made on first use."""
    limiter = getattr(state, "rate_limiter", None)
    if limiter is None:
        settings = getattr(state, "settings", None)
        limiter = state.rate_limiter = RateLimiter(
            getattr(settings, "rate_limit_per_second", 1000.0), getattr(settings, "rate_limit_burst", 2000)
        )
    return limiter


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413 before they are buffered whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, TITLES[413], f"request bodies are limited to {self.max_bytes} bytes")
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.request_latency.labels(scope["method"], path, str(status["code"])).observe(
                time.perf_counter() - started
            )
