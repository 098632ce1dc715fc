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
import hashlib
import json
import math
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


SAMPLE_REASON = "random sample: keeps what is learnt unbiased"


@dataclass(frozen=True)
class Cursor:
    """Where the previous page stopped in each of the two lists the queue interleaves."""

    ranked: tuple[float, str] | None  # (priority, response id) of the last item taken by rank
    sampled: tuple[str, str] | None  # (sample key, response id) of the last item taken from the sample
    next_from: str  # "ranked" or "sampled"

    def encode(self) -> str:
        payload = json.dumps(
            [list(self.ranked) if self.ranked else None, list(self.sampled) if self.sampled else None, self.next_from]
        )
        return base64.urlsafe_b64encode(payload.encode()).decode()


def encode_cursor(priority: float, response_id: str) -> str:
    """A cursor after the ranked item (``priority``, ``response_id``), the sample not started."""
    return Cursor((priority, response_id), None, "sampled").encode()


def decode_cursor(cursor: str) -> Cursor:
    """The previous page's ``next_cursor``; 422 naming ``cursor`` for anything else."""
    try:
        ranked, sampled, next_from = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())
        if next_from not in ("ranked", "sampled"):
            raise ValueError(next_from)
        if ranked is not None:
            priority, rid = float(ranked[0]), ranked[1]
            if not math.isfinite(priority) or not isinstance(rid, str) or not rid:
                raise ValueError(ranked)
            ranked = (priority, rid)
        if sampled is not None:
            if not all(isinstance(x, str) and x for x in sampled) or len(sampled) != 2:
                raise ValueError(sampled)
            sampled = (sampled[0], sampled[1])
        return Cursor(ranked, sampled, next_from)
    except (ValueError, TypeError, IndexError, KeyError, UnicodeError, binascii.Error):
        raise UnprocessableContent(
            "cursor: not one this API returned", errors=[{"field": "cursor", "message": "not one this API returned"}]
        ) from None


def sample_key(response_id: str) -> str:
    """A comment's place in the random sample: fixed per response, unrelated to its content."""
    return hashlib.sha256(response_id.encode()).hexdigest()[:16]


async def review_queue(
    session: AsyncSession,
    *,
    classifier: Classifier,
    limit: int,
    after: Cursor | None = None,
    window: int = REVIEW_WINDOW,
    cache: ReadingCache = readings,
) -> QueuePage:
    """One page of the queue among the newest ``window`` classified, uncorrected commented
    responses (erased ones hold no comment and never appear), after ``after``.

    Two lists take turns: the comments ranked by how much a correction teaches (ties by
    response id), and a fixed pseudo-random sample of all of them. Labels chosen by uncertainty
    alone are a biased sample: a sentiment trained on mostly borderline comments and detractors'
    praise reads the ordinary comment worse (measured: ``docs/classifier.md``), so every other
    item is an ordinary comment. Each comment appears once."""
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
    readable = [(c, p) for c in candidates if (p := priorities[c.id]) is not None]

    def rank_key(item: tuple[review.Candidate, review.ReviewPriority]) -> tuple[float, str]:
        return (-item[1].priority, item[0].id)

    def sample_order(item: tuple[review.Candidate, review.ReviewPriority]) -> tuple[str, str]:
        return (sample_key(item[0].id), item[0].id)

    cursor = after or Cursor(None, None, "ranked")
    last_ranked = (-cursor.ranked[0], cursor.ranked[1]) if cursor.ranked else None
    last_sampled = cursor.sampled

    def shown(item: tuple[review.Candidate, review.ReviewPriority]) -> bool:
        by_rank = last_ranked is not None and item[1].priority > 0 and rank_key(item) <= last_ranked
        return by_rank or (last_sampled is not None and sample_order(item) <= last_sampled)

    ranked = sorted((i for i in readable if i[1].priority > 0 and not shown(i)), key=rank_key)
    sampled = sorted((i for i in readable if not shown(i)), key=sample_order)
    lists = {"ranked": ranked, "sampled": sampled}
    taken: dict[str, str] = {}  # response id -> the list it was taken from, in page order
    turn = cursor.next_from
    new_ranked, new_sampled = cursor.ranked, cursor.sampled
    while len(taken) < limit and (ranked or sampled):
        source = turn if lists[turn] else ("sampled" if turn == "ranked" else "ranked")
        candidate, priority = lists[source].pop(0)
        if candidate.id in taken:  # taken from the other list on this page: this list's turn still
            continue
        turn = "sampled" if source == "ranked" else "ranked"
        taken[candidate.id] = source
        if source == "ranked":
            new_ranked = (priority.priority, candidate.id)
        else:
            new_sampled = sample_order((candidate, priority))
    remaining = {c.id for c, _ in ranked + sampled} - set(taken)
    by_id = {r["id"]: r for r in responses}
    found = {c.id: p for c, p in readable}
    items = [_item(by_id[rid], rows[rid], found[rid], sampled=source == "sampled") for rid, source in taken.items()]
    next_cursor = Cursor(new_ranked, new_sampled, turn).encode() if remaining else None
    return QueuePage(items, next_cursor, len(responses))


def _item(response: dict[str, Any], row, priority: review.ReviewPriority, *, sampled: bool) -> dict[str, Any]:
    return {
        "response_id": response["id"],
        "comment": response["comment"],
        "score": response["score"],
        **repository.as_fields(row),
        "priority": priority.priority,
        "reasons": list(priority.reasons) + ([SAMPLE_REASON] if sampled else []),
        "uncertain_themes": [{"id": t, "confidence": d} for t, d in priority.uncertain_themes],
    }
