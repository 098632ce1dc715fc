"""A lean ASGI path for the hottest requests: valid, authorised POSTs to /v1/responses
and /v1/responses/batch.

Through FastAPI a single POST passes eight middlewares, route matching over every
router, dependency solving, a JSON parse and then a second validation pass, and
per-request telemetry checks; that cost several times what storing the response costs.
This path does only what the request needs — one header scan, one key lookup in the
cache, one ``model_validate_json`` — and hands the submission to the same group-commit
writer, so a 202 still means "durably committed".

It answers only the successful case (and the writer's own outcomes: duplicate, 409, a
key revoked meanwhile, database errors). Anything else — no or unknown key, missing
scope, an odd content type, an oversized or invalid body, a bad Idempotency-Key header,
the rate limit — is handed to the FastAPI route with the body replayed, so every error
is produced by exactly the code that produced it before and stays identical.

A batch is served here only when every item is valid (one ``model_validate_json`` for
the whole body, ~10x cheaper than the route's JSON parse plus a validation per item);
a batch with any invalid item goes to the route, which reports each item's errors.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from npsloop.services.ingest import service
from npsloop.services.ingest.schemas import ResponseIn, ValidBatchIn
from npsloop.shared.auth import Principal
from npsloop.shared.observability import metrics
from npsloop.shared.storable_input import problem_in_body
from npsloop.shared.web import rate_limiter

PATH = "/v1/responses"
BATCH_PATH = "/v1/responses/batch"
SCOPE = "responses:write"
IDEMPOTENCY_MAX = 200  # the route's Header(max_length=200)

_JSON = b"application/json"
_RESPONSE_HEADERS = [(b"content-type", b"application/json")]


class IngestFastPath:
    """Serves the two ingest POSTs for ``app``; ``fallback`` is the full FastAPI app."""

    def __init__(self, app: Any, fallback: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.fallback = fallback
        self.max_bytes = max_bytes
        # (path, status) -> histogram child: labels() per request costs a lock and a dict lookup
        self._latency: dict[tuple[str, int], Any] = {}

    @staticmethod
    def matches(scope: Scope) -> bool:
        return scope["type"] == "http" and scope["path"] in (PATH, BATCH_PATH) and scope["method"] == "POST"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        authorization = content_type = idempotency = None
        declared_length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return await self.fallback(scope, receive, send)
                authorization = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared_length = value
            elif name == b"idempotency-key":
                if idempotency is not None:  # which one wins is the framework's call
                    return await self.fallback(scope, receive, send)
                idempotency = value
        if (
            content_type is None
            or not _is_json(content_type)
            or authorization is None
            or (
                declared_length is not None and (not declared_length.isdigit() or int(declared_length) > self.max_bytes)
            )
        ):
            return await self.fallback(scope, receive, send)
        batch = scope["path"] == BATCH_PATH
        idempotency_key = None
        if idempotency is not None:
            idempotency_key = idempotency.decode("latin-1")  # as Starlette decodes headers
            # Not part of the batch contract, or out of bounds: the route decides.
            if batch or not 1 <= len(idempotency_key) <= IDEMPOTENCY_MAX:
                return await self.fallback(scope, receive, send)

        principal = await self._principal(authorization)
        if principal is None:
            return await self.fallback(scope, receive, send)

        body, messages, complete = await _read_body(receive, self.max_bytes)
        replay = _replaying(messages, receive)
        if not complete:  # over the limit or the client left: the full stack says so
            return await self.fallback(scope, replay, send)
        if problem_in_body(body) is not None:  # a NUL or non-finite number: the full stack's 422
            return await self.fallback(scope, replay, send)
        try:
            payload = (ValidBatchIn if batch else ResponseIn).model_validate_json(body)
        except ValidationError:
            return await self.fallback(scope, replay, send)
        # The token is taken only now, so a request handed over above never pays twice.
        if rate_limiter(self.app.state).acquire(principal.key_id) > 0:
            return await self.fallback(scope, replay, send)
        if isinstance(payload, ValidBatchIn):  # the batch path's model
            return await self._store_batch(scope, replay, send, principal, payload, started)

        try:
            accepted = await self.app.state.ingest_writer.submit(
                service.Submission(
                    payload, source=principal.name, idempotency_key=idempotency_key, key_id=principal.key_id
                )
            )
        except Exception as exc:
            response = await self._error_response(scope, exc)
            await response(scope, replay, send)
            self._observe(PATH, response.status_code, started)
            return
        if not accepted.duplicate:
            metrics.responses_ingested.inc()
        await self._send_json(send, 202, {"id": accepted.id, "status": "accepted", "duplicate": accepted.duplicate})
        self._observe(PATH, 202, started)

    async def _store_batch(
        self, scope: Scope, replay: Receive, send: Send, principal: Principal, batch: ValidBatchIn, started: float
    ) -> None:
        state = self.app.state
        try:
            outcomes = await service.store_batch(
                state.db, principal.name, principal.key_id, batch.responses, clock=state.clock
            )
        except IntegrityError:
            # Another writer stored one of these external ids between our lookup and insert;
            # nothing of ours was committed, and the route finds that row and reports it.
            return await self.fallback(scope, replay, send)
        except Exception as exc:
            response = await self._error_response(scope, exc)
            await response(scope, replay, send)
            self._observe(BATCH_PATH, response.status_code, started)
            return
        result = service.batch_result(len(outcomes), dict(enumerate(outcomes)), {})
        metrics.responses_ingested.inc(result["accepted"])
        await self._send_json(send, 202, result)
        self._observe(BATCH_PATH, 202, started)

    @staticmethod
    async def _send_json(send: Send, status: int, document: dict[str, Any]) -> None:
        body = to_json(document)  # pydantic_core's encoder: a 1,000-item batch result in a fraction of json's time
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *_RESPONSE_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _principal(self, authorization: bytes) -> Principal | None:
        kind, _, presented = authorization.decode("latin-1").partition(" ")
        presented = presented.strip()
        if kind.lower() != "bearer" or not presented:
            return None
        state = self.app.state
        # The writer re-checks revocation inside its transaction, as for the FastAPI route.
        principal = await state.key_cache.authenticate(state.db.sessions, presented)
        if principal is None or not principal.allows(SCOPE):
            return None
        return principal

    async def _error_response(self, scope: Scope, exc: Exception):
        """The response the app's own exception handlers give for ``exc``."""
        handlers = self.app.exception_handlers
        handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
        if handler is None:
            raise exc
        return await handler(Request(scope), exc)

    def _observe(self, path: str, status: int, started: float) -> None:
        child = self._latency.get((path, status))
        if child is None:
            child = self._latency[path, status] = metrics.request_latency.labels("POST", path, str(status))
        child.observe(time.perf_counter() - started)


def _is_json(content_type: bytes) -> bool:
    main = content_type.split(b";", 1)[0].strip().lower()
    return main == _JSON


async def _read_body(receive: Receive, max_bytes: int) -> tuple[bytes, list[Message], bool]:
    """The whole body, the messages it came in, and whether it is complete and within the limit."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"", messages, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return b"", messages, False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), messages, True


def _replaying(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that gives back the messages already read, then reads on."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
