"""The review queue: stored comments whose correction would teach the classifier most.

The ranking (``review``) needs every theme's decision, which stored classifications do not
keep (only the themes that passed), so the queue reads the newest ``REVIEW_WINDOW`` commented
responses again with the active classifier at query time. Readings are cached per classifier
version, response and comment, so paging and the dashboard's refresh after each correction
cost a dictionary lookup per comment, not a classification.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier import repository, review
from npsloop.services.classifier.model import Classifier
from npsloop.services.ingest import service as ingest
from npsloop.shared.problems import UnprocessableContent

# How many of the newest commented responses the queue reads: bounded, so a request costs at
# most this many classifications (a few hundred milliseconds with the built-in model), and
# recent comments are the ones people remember the context of.
REVIEW_WINDOW = 1000
CACHE_SIZE = 20_000


class ReadingCache:
    """``review.prioritise`` of a comment as one classifier version read it, least recently used out."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[tuple, review.ReviewPriority | None] = OrderedDict()
        self._lock = threading.Lock()  # requests read in worker threads

    def priorities(
        self, classifier: Classifier, candidates: list[review.Candidate]
    ) -> dict[str, review.ReviewPriority | None]:
        """Every candidate's priority (None: nothing to read in it), computed where not cached."""
        with self._lock:
            return self._priorities(classifier, candidates)

    def _priorities(
        self, classifier: Classifier, candidates: list[review.Candidate]
    ) -> dict[str, review.ReviewPriority | None]:
        version = classifier.version
        out: dict[str, review.ReviewPriority | None] = {}
        for candidate in candidates:
            key = (version, candidate.id, candidate.comment, candidate.score)
            if key in self._entries:
                self._entries.move_to_end(key)
                out[candidate.id] = self._entries[key]
                continue
            reading = review.read(classifier, candidate.comment, candidate.score)
            found = review.prioritise(reading, candidate.score) if reading is not None else None
            self._entries[key] = found
            out[candidate.id] = found
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return out


readings = ReadingCache()


@dataclass(frozen=True)
class QueuePage:
    items: list[dict[str, Any]]
    next_cursor: str | None
    window: int  # how many recent commented responses were read


def encode_cursor(priority: float, response_id: str) -> str:
    return base64.urlsafe_b64encode(f"{priority!r}|{response_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    """(priority, response id) of the previous page's last item; 422 naming ``cursor`` otherwise."""
    try:
        priority, response_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        value = float(priority)
        if value != value or not response_id:  # NaN, or no id
            raise ValueError(cursor)
        return value, response_id
    except (ValueError, UnicodeError, binascii.Error):
        raise UnprocessableContent(
            "cursor: not one this API returned", errors=[{"field": "cursor", "message": "not one this API returned"}]
        ) from None


async def review_queue(
    session: AsyncSession,
    *,
    classifier: Classifier,
    limit: int,
    after: tuple[float, str] | None = None,
    window: int = REVIEW_WINDOW,
    cache: ReadingCache = readings,
) -> QueuePage:
    """One page of the queue: classified, uncorrected commented responses among the newest
    ``window``, most to teach first (ties by response id), after ``after`` (the previous page's
    last item). Erased responses hold no comment and never appear."""
    responses = await ingest.newest_commented_responses(session, limit=window)
    ids = [r["id"] for r in responses]
    corrected = await repository.effective_corrections(session, ids)
    rows = await repository.get_many(session, ids)
    candidates = [
        review.Candidate(r["id"], r["comment"], r["score"])
        for r in responses
        if r["id"] in rows and r["id"] not in corrected and (r["comment"] or "").strip()
    ]
    priorities = await asyncio.to_thread(cache.priorities, classifier, candidates)
    ranked = sorted(
        ((c, p) for c in candidates if (p := priorities[c.id]) is not None and p.priority > 0),
        key=lambda item: (-item[1].priority, item[0].id),
    )
    if after is not None:
        last_priority, last_id = after
        ranked = [(c, p) for c, p in ranked if (-p.priority, c.id) > (-last_priority, last_id)]
    page = ranked[:limit]
    by_id = {r["id"]: r for r in responses}
    items = [_item(by_id[c.id], rows[c.id], p) for c, p in page]
    next_cursor = encode_cursor(page[-1][1].priority, page[-1][0].id) if len(ranked) > limit else None
    return QueuePage(items, next_cursor, len(responses))


def _item(response: dict[str, Any], row, priority: review.ReviewPriority) -> dict[str, Any]:
    return {
        "response_id": response["id"],
        "comment": response["comment"],
        "score": response["score"],
        **repository.as_fields(row),
        "priority": priority.priority,
        "reasons": list(priority.reasons),
        "uncertain_themes": [{"id": t, "confidence": d} for t, d in priority.uncertain_themes],
    }
