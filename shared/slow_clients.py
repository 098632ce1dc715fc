"""Bounds on clients that send slowly or lie about their Content-Length.

uvicorn waits for a request's headers, and an application waits for its body, for as long
as the client keeps the connection open: a client that sends half a header block, or
declares 1,000 bytes and sends ten, holds a connection (and, for the body, a request in
progress) forever. Two deadlines end that:

- the header block must be complete within ``header_timeout`` seconds of the connection
  opening (or of the previous response, on a kept-alive connection): else ``408`` and the
  connection is closed, at the protocol level (:func:`bounded_http_protocol`);
- the body must be complete within ``body_timeout`` seconds of the headers: else the
  request's handling is stopped while it is still reading (nothing has been written), the
  client gets a ``408`` problem and the connection is closed (:class:`BodyDeadline`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from npsloop.shared.problems import problem_response

log = logging.getLogger("npsloop.http")


class _BodyTimedOut(asyncio.CancelledError):
    """Stops the application where it waits for the body (a cancellation, so no layer of
    the stack mistakes it for an error to answer 500 to)."""


class BodyDeadline:
    """ASGI wrapper: the whole request body must arrive within ``seconds`` of the headers."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_complete = False
        response_started = False
        timed_out = False

        async def bounded_receive() -> Message:
            nonlocal body_complete, timed_out
            if body_complete:  # later calls wait for a disconnect: not bounded
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                timed_out = True
                raise _BodyTimedOut from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_complete = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except asyncio.CancelledError:
            if not timed_out:
                raise  # a real cancellation (shutdown)
            log.info("request body too slow; answered 408", extra={"path": scope.get("path")})
            if not response_started:
                response = problem_response(
                    408,
                    "Request Timeout",
                    f"the request body did not arrive within {self.seconds:g} s of the headers "
                    "(is the Content-Length right?)",
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)


def _408(message: str) -> bytes:
    body = json.dumps({"type": "about:blank", "title": "Request Timeout", "status": 408, "detail": message}).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


def bounded_http_protocol(header_timeout: float) -> Any:
    """uvicorn's httptools protocol with a deadline on each request's header block, for
    ``uvicorn.Config(http=...)``; "auto" (no header deadline) when httptools is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
        log.warning("httptools is not installed: no deadline on request headers")
        return "auto"
    answer = _408(f"the request headers did not arrive within {header_timeout:g} s")

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Armed only when the connection now waits for a new request (uvicorn armed its
            # keep-alive timer); a pipelined request already has its headers.
            if self.timeout_keep_alive_task is not None:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.write(answer)
                self.transport.close()

    return BoundedHttpToolsProtocol
