"""Refuse input that one of the databases cannot store, before any route sees it.

PostgreSQL rejects a NUL character in text and SQLite stores it but cannot match it
again; JSON has no infinity or NaN, so ``Infinity``, ``NaN`` and ``1e400`` would be
written as text no strict consumer of our events can read. Checking here, once, for
every route means no route has to remember; the answer is a 422 naming the field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from npsloop.shared.problems import TITLES, problem_response

NUL = "\x00"
ESCAPED_NUL = b"\\u0000"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a non-finite number can look like in JSON text: a cheap pre-check before a full parse.
_MAYBE_NON_FINITE = re.compile(rb"NaN|Infinity|[eE]\+?\d{3}|\d{300}")


class _NotStorable(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _reject_constant(token: str) -> float:
    raise _NotStorable("", f"{token} is not a JSON number; send a finite number")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NotStorable("", f"{token} is too large to store; send a finite number")
    return value


def _walk(value: Any, path: list[str]) -> None:
    if isinstance(value, str):
        if NUL in value:
            raise _NotStorable(".".join(path) or "body", "must not contain the NUL character (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                raise _NotStorable(".".join(path) or "body", "keys must not contain the NUL character (\\u0000)")
            _walk(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, [*path, str(index)])


def problem_in_body(body: bytes) -> tuple[str, str] | None:
    """``(field, message)`` for a JSON body that holds a NUL or a non-finite number, else None.

    A body that is not JSON at all is left to the route, which answers 400.
    """
    suspicious = ESCAPED_NUL in body or _MAYBE_NON_FINITE.search(body) is not None
    if not suspicious:
        return None
    try:
        document = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except _NotStorable as exc:
        return _locate_number(body), exc.message
    except ValueError:
        return None
    try:
        _walk(document, [])
    except _NotStorable as exc:
        return exc.field, exc.message
    return None


def _locate_number(body: bytes) -> str:
    """The field holding the first non-finite number (found by parsing with placeholders)."""
    marker = object()
    try:
        document = json.loads(
            body,
            parse_constant=lambda _: marker,
            parse_float=lambda t: marker if not math.isfinite(float(t)) else float(t),
        )
    except ValueError:
        return "body"

    def find(value: Any, path: list[str]) -> list[str] | None:
        if value is marker:
            return path
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            found = find(item, [*path, str(key)])
            if found is not None:
                return found
        return None

    return ".".join(find(document, []) or []) or "body"


def problem_in_target(scope: Scope) -> tuple[str, str] | None:
    """``(field, message)`` for a NUL in the decoded path or in a query parameter."""
    if NUL in scope.get("path", ""):
        return "path", "must not contain the NUL character (%00)"
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if NUL in name or NUL in value:
                return f"query.{name.replace(NUL, '')}", "must not contain the NUL character (%00)"
    return None


def _unprocessable(field: str, message: str, path: str) -> Any:
    return problem_response(
        422,
        TITLES[422],
        f"{field}: {message}",
        errors=[{"field": field, "message": message, "type": "not_storable"}],
        instance=path,
    )


class StorableInputMiddleware:
    """Answers 422 for a NUL character (path, query, JSON body) or a non-finite JSON number.

    ``per_item_paths`` take many items in one body and validate each on its own (a batch):
    their bodies are left to the route, so one bad item does not fail the others.
    """

    def __init__(self, app: ASGIApp, per_item_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.per_item_paths = per_item_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = problem_in_target(scope)
        if problem is not None:
            await _unprocessable(*problem, scope["path"].replace(NUL, ""))(scope, receive, send)
            return
        if scope["method"] not in _BODY_METHODS or scope["path"] in self.per_item_paths or not _declares_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                problem = problem_in_body(b"".join(chunks))
                if problem is not None:
                    await _unprocessable(*problem, scope["path"])(scope, receive, send)
                    return
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _declares_json(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            main = value.split(b";", 1)[0].strip().lower()
            return main == b"application/json" or main.endswith(b"+json")
    return False
