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

A subscription may also name a ``prefetch(session, events)``: when the transport handles
a group of events in one transaction, it calls it once, before the handlers, with the
events about to be handled. It loads in a few queries what the handlers would otherwise
query one event at a time, and leaves it in ``session.info`` for them (see
:func:`prefetched`). It must not change state; handlers work the same without it (an
event handled on its own, a retry, a redrive), only with more queries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared.events import CloudEvent

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
Prefetch = Callable[[AsyncSession, list[CloudEvent]], Awaitable[None]]
Interest = Callable[[AsyncSession], Awaitable[frozenset[str] | None]]

_MISSING = object()


def prefetched(session: AsyncSession, name: str) -> dict | None:
    """The lookup table a prefetch stored under ``name`` for this transaction, or None.

    A table maps every key the group needs to what the handler's own query would have
    found (None for "no row"); a key it does not hold was not prefetched. Handlers keep
    it true as they write (a row they add goes in), so a later event of the same group
    sees the earlier one's effect.
    """
    return session.info.get(("prefetched", name))


def store_prefetched(session: AsyncSession, name: str, table: dict) -> None:
    session.info[("prefetched", name)] = table


def lookup(session: AsyncSession, name: str, key: object) -> object:
    """``prefetched(session, name)[key]``, or :data:`NOT_PREFETCHED` when it is not there."""
    table = prefetched(session, name)
    return NOT_PREFETCHED if table is None else table.get(key, NOT_PREFETCHED)


NOT_PREFETCHED = _MISSING


@dataclass(frozen=True)
class Subscription:
    consumer: str
    topics: tuple[str, ...]
    handler: Handler
    event_types: frozenset[str] = field(default_factory=frozenset)  # empty = every type on the topics
    prefetch: Prefetch | None = None  # optional: per group, before the handlers (see above)
    # True when the handler's own writes make handling an event again a no-op (a unique key
    # it checks first): then no idempotency record (processed_events) is read or written.
    idempotent: bool = False
    # Optional: the event types the handler can act on at the moment (None: any), read in the
    # consumer's transaction. For a handler whose interest changes at run time (the webhook
    # fan-out: the types some subscription asked for). A transport may pass over events of
    # other types without reading them, moving its position past them as if handled.
    interest: Interest | None = None

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def takes(self, event_type: str, interest: frozenset[str] | None) -> bool:
        """Whether an event of this type is handled, given what ``interest`` returned."""
        return self.wants(event_type) and (interest is None or event_type in interest)


class Transport(Protocol):
    name: str

    async def run(self, subscription: Subscription, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; finish the event in hand, then return."""

    async def check(self) -> None:
        """Raise if the transport cannot be reached (used by /readyz)."""
