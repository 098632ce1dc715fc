"""Garbage-collector settings for a long-running npsloop process.

Full collections walked every object made at start-up and were most of the cost of building
a row; freezing the start-up heap and making young collections rarer removes that (figures in
docs/decisions/0001-ingest-and-pipeline-performance.md).
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
