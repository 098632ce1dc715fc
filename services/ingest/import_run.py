"""``npsloop import``'s run: records in, batches through the batch path.

Every record is validated as ``ResponseIn`` (what the API validates) and stored through
``service.store_batch`` (what ``POST /v1/responses/batch`` calls) — in this process (a
batch drafted by the reading process through ``service.store_drafts``, the same decision
and writes), or by that endpoint on a running server. Rejected records go to a JSON Lines file with their
line and reason as soon as they are found, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
from sqlalchemy.exc import IntegrityError

from npsloop.services.ingest import service
from npsloop.services.ingest.import_process import ProcessReader
from npsloop.services.ingest.import_reader import Batch, ReadFailed, ThreadReader
from npsloop.services.ingest.importing import RecordMapper, RecordSource
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database
from npsloop.shared.jsontext import compact_json
from npsloop.shared.problems import Problem

# Rows per batch, and per transaction locally: a commit waits for a disk flush (and, now
# and then, a WAL checkpoint), tens of milliseconds on a busy disk, a fifth of an import's
# time at 1,000 rows a batch; and the next batch is drafted while one commits. Memory
# holds about four batches (two storing, one received, one being read): at 5,000 rows
# peak RSS was 190 MB against 133 MB at 2,000, for no measurable gain in speed.
BATCH_SIZE = 2000
REMOTE_BATCH_ITEMS = 1000  # the batch endpoint's limit
REMOTE_BATCH_BYTES = 900_000  # under the server's default 1 MiB body limit
Outcome = tuple[str, str | None]  # ("stored" | "duplicate" | "rejected", reason)
Reader = ThreadReader | ProcessReader


class ImportAborted(RuntimeError):
    """The import cannot go on (the server refused the key, or stayed unreachable)."""


@dataclass
class ImportCounts:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0


class Store(Protocol):
    async def store(self, batch: Batch) -> list[Outcome]: ...


class LocalStore:
    """Stores into this installation's database, as the batch endpoint does.

    Two batches overlap: the next one is drafted (rows and events built, no database
    needed) while the last one's commit waits for the disk; the write slot still lets
    one transaction write at a time, in the order the batches came. A batch from the
    reading process (``batch.drafts``) was drafted there.
    """

    overlaps = True

    def __init__(self, db: Database, clock: Clock, source: str) -> None:
        self.db, self.clock, self.source = db, clock, source

    async def store(self, batch: Batch) -> list[Outcome]:
        try:
            results = await self._store(batch)
        except IntegrityError:
            # Another writer stored one of these ids between our lookup and insert: nothing of
            # ours was written, and a second pass finds that row.
            results = await self._store(batch)
        return [
            (("duplicate" if r.duplicate else "stored"), None)
            if isinstance(r, service.Accepted)
            else ("rejected", r.detail or r.title)
            for r in results
        ]

    async def _store(self, batch: Batch) -> list[service.Accepted | Problem]:
        if batch.drafts is None:
            return await service.store_batch(self.db, self.source, None, batch.payloads, clock=self.clock)
        return await service.store_drafts(self.db, batch.drafts, clock=self.clock)


class RemoteStore:
    """POSTs to a running server's ``/v1/responses/batch`` with an API key."""

    def __init__(self, client: httpx.AsyncClient, *, retries: int = 5) -> None:
        self.client, self.retries = client, retries

    async def store(self, batch: Batch) -> list[Outcome]:
        bodies = [compact_json(p.model_dump(mode="json", exclude_none=True)) for p in batch.payloads]
        outcomes: list[Outcome] = []
        start = size = 0
        for end, body in enumerate(bodies):
            if end > start and (size + len(body) > REMOTE_BATCH_BYTES or end - start >= REMOTE_BATCH_ITEMS):
                outcomes += await self._post(bodies[start:end])
                start, size = end, 0
            size += len(body) + 1
        outcomes += await self._post(bodies[start:])
        return outcomes

    async def _post(self, bodies: list[str]) -> list[Outcome]:
        content = ('{"responses":[' + ",".join(bodies) + "]}").encode()
        for attempt in range(self.retries + 1):
            try:
                reply = await self.client.post(
                    "/v1/responses/batch", content=content, headers={"content-type": "application/json"}
                )
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ImportAborted(f"the server did not answer: {type(exc).__name__}: {exc}") from None
                await asyncio.sleep(min(2**attempt, 30))
                continue
            if reply.status_code == 202:
                return [_remote_outcome(item) for item in reply.json()["results"]]
            if reply.status_code == 413 and len(bodies) > 1:
                half = len(bodies) // 2
                return await self._post(bodies[:half]) + await self._post(bodies[half:])
            if reply.status_code == 413:
                return [("rejected", "larger than the server accepts in one request")]
            if reply.status_code in (401, 403):
                raise ImportAborted(f"the server refused the key ({reply.status_code}): {_detail(reply)}")
            if reply.status_code == 429 or reply.status_code >= 500:
                if attempt == self.retries:
                    raise ImportAborted(f"the server answered {reply.status_code}: {_detail(reply)}")
                wait = reply.headers.get("retry-after", "")
                await asyncio.sleep(float(wait) if wait.isdigit() else min(2**attempt, 30))
                continue
            raise ImportAborted(f"the server answered {reply.status_code}: {_detail(reply)}")
        raise AssertionError("unreachable")


def _remote_outcome(item: dict[str, Any]) -> Outcome:
    if item["status"] == "accepted":
        return ("stored", None)
    if item["status"] == "duplicate":
        return ("duplicate", None)
    return ("rejected", "; ".join(f"{e['field']}: {e['message']}" for e in item.get("errors") or []))


def _detail(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("detail") or reply.json().get("title"))
    except ValueError:
        return reply.text[:200]


class DryRun:
    """Writes what would be stored (JSON Lines on ``out``) and stores nothing; with a
    database, answers already stored there count as duplicates."""

    def __init__(self, out: IO[str], db: Database | None = None, source: str = "") -> None:
        self.out, self.db, self.source = out, db, source

    async def store(self, batch: Batch) -> list[Outcome]:
        payloads, lines = batch.payloads, batch.lines
        stored: set[str] = set()
        if self.db is not None:
            async with self.db.sessions() as session:
                stored = await service.stored_external_ids(
                    session, self.source, {p.external_id for p in payloads if p.external_id}
                )
        outcomes: list[Outcome] = []
        for payload, line in zip(payloads, lines):
            if payload.external_id in stored:
                outcomes.append(("duplicate", None))
                continue
            stored.add(payload.external_id or "")
            self.out.write(
                compact_json({"line": line, "response": payload.model_dump(mode="json", exclude_none=True)}) + "\n"
            )
            outcomes.append(("stored", None))
        return outcomes


class RejectsFile:
    """JSON Lines of ``{"line", "reason", "record"}``; the file is left only if something was rejected."""

    def __init__(self, path: Path, headers: list[str]) -> None:
        self.path, self.headers, self.count = path, headers, 0
        self._file = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()

    def add(self, line: int, reason: str, values: list[str] | dict[str, Any]) -> None:
        record = dict(zip(self.headers, values)) if isinstance(values, list) else values
        text = json.dumps({"line": line, "reason": reason, "record": record}, ensure_ascii=False) + "\n"
        with self._lock:
            self.count += 1
            self._file.write(text)

    def close(self) -> None:
        self._file.close()
        if self.count == 0:
            self.path.unlink(missing_ok=True)


class Progress:
    """Count, rate and ETA: redrawn in place on a terminal, a plain line every few seconds elsewhere."""

    def __init__(self, stream: IO[str], total_bytes: int, *, every: float | None = None) -> None:
        self.stream, self.total = stream, max(total_bytes, 1)
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.every = every if every is not None else (0.2 if self.tty else 5.0)
        self.started = self.shown = time.monotonic()

    def update(self, rows: int, bytes_read: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown < self.every:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-9)
        fraction = min(bytes_read / self.total, 1.0)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        minutes, seconds = divmod(int(eta + 0.5), 60)
        line = (
            f"import {rows:,} rows  {fraction:4.0%}  {rows / elapsed:,.0f} rows/s  "
            f"ETA {minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
        )
        if self.tty:
            filled = int(24 * fraction)
            self.stream.write(f"\r[{'#' * filled}{'.' * (24 - filled)}] {line}" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


async def run_import(
    source: RecordSource,
    mapper: RecordMapper,
    store: Store,
    *,
    rejects: RejectsFile,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    reader: Reader | None = None,
) -> ImportCounts:
    """Read, map, validate and store every record of ``source``; counts of each outcome.

    The next batch is read and validated while this one is stored: by ``reader`` (closed
    here; a :class:`ProcessReader` reads in a second process), else in a worker thread. Each batch is one call of ``store`` — locally one transaction:
    an import that stops part-way leaves whole batches, and running it again skips them.
    A store that ``overlaps`` gets the next batch while it commits the last one.
    """
    counts = ImportCounts()
    reader = reader or ThreadReader(source, mapper, batch_size)
    depth = 2 if getattr(store, "overlaps", False) else 1
    in_flight: deque[tuple[Batch, asyncio.Future[list[Outcome]]]] = deque()
    reading: asyncio.Future[Batch | None] | None = asyncio.ensure_future(_next(reader))
    bytes_read = 0
    try:
        while True:
            if reading is not None and len(in_flight) < depth:
                batch = await reading
                reading = None
                if batch is not None:
                    counts.read += batch.read
                    bytes_read = batch.bytes_read
                    for line, problem, values in batch.rejected:
                        rejects.add(line, problem, values)
                    in_flight.append((batch, asyncio.ensure_future(_store(store, batch))))
                    reading = asyncio.ensure_future(_next(reader))
                    continue
            if not in_flight:
                break
            batch, storing = in_flight.popleft()
            for line, values, (status, reason) in zip(batch.lines, batch.values, await storing):
                if status == "stored":
                    counts.stored += 1
                elif status == "duplicate":
                    counts.duplicates += 1
                else:
                    rejects.add(line, reason or "rejected", values)
            if progress:
                progress.update(counts.read, bytes_read)
    except BaseException:
        # The batches after the one that failed are not stored (a batch still commits or
        # rolls back whole, so a re-run finds whole batches either way).
        for _, storing in in_flight:
            storing.cancel()
        raise
    finally:
        unfinished = [f for _, f in in_flight] + ([reading] if reading is not None else [])
        if unfinished:
            await asyncio.wait(unfinished)
            for future in unfinished:
                if not future.cancelled():
                    future.exception()
        reader.close()
    counts.rejected = rejects.count
    if progress:
        progress.update(counts.read, max(bytes_read, source.bytes_read), final=True)
    return counts


async def _store(store: Store, batch: Batch) -> list[Outcome]:
    return await store.store(batch) if batch.valid else []


async def _next(reader: Reader) -> Batch | None:
    try:
        return await reader.next()
    except ReadFailed as exc:
        raise ImportAborted(str(exc)) from None
