"""Garbage-collector settings for a long-running npsloop process.

CPython's cyclic collector runs a young collection every 700 net allocations of
container objects and, every hundred of those, a full one that walks every live object
— including the tens of thousands made at start-up (routes, models, the policy, the
classifier's lexicons, the ORM registry) that live as long as the process. The hot
paths allocate many short-lived dicts and tuples (a bulk import builds several per
response), so the collector was most of the cost of building a row: 12 us per response
row with the defaults, 3 us with collection off, in benchmarks' micro-measurements.

Freezing the start-up heap removes it from every later collection, and a larger young
generation makes collections rarer. Reference counting still frees almost everything at
once; only reference cycles wait a little longer, which costs memory in the megabytes,
not more (``npsloop up`` stays far under its 300 MB target, see the README).
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 50_000


def tune_for_service() -> None:
    """Call once, after start-up, in a process that serves or consumes until stopped."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
