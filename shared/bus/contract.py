"""The bus contract every transport honours.

A *subscription* names a consumer group, the topics it reads and one handler. A handler
is a plain ``async def handler(session, event)``: it changes state (and appends events
through the outbox) inside the session it is given and never commits. The transport
guarantees, for each subscription:

- events of one key are handled in log order;
- each event's effect commits together with the ``(consumer, event_id)`` record, so a
  crash or a redelivery never loses an effect and never applies it twice;
- the transport's position (log position or Kafka offset) moves only after that commit;
- an event that keeps failing is retried a bounded number of times with backoff, then
  written to the dead letters with the error, and the events after it keep flowing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import CloudEvent

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    consumer: str
    topics: tuple[str, ...]
    handler: Handler
    event_types: frozenset[str] = field(default_factory=frozenset)  # empty = every type on the topics

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class Transport(Protocol):
    name: str

    async def run(self, subscription: Subscription, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; finish the event in hand, then return."""

    async def check(self) -> None:
        """Raise if the transport cannot be reached (used by /readyz)."""
