"""Reading an import's file: records mapped and validated into batches, in a thread or a process.

Reading, mapping and validating a row costs about as much CPU as storing it. In a thread
the two take turns on one interpreter lock, so an import ran on one core at the speed of
both added together. :class:`ProcessReader` does the reading in a second process (spawned,
so it shares no locks or connections with this one) and sends each batch over a pipe:
the valid rows as one JSON array of ``ResponseIn`` bodies, which this process parses
back with the same model in one call (the batch endpoint's fast path does the same), and
the rejected ones with their line and reason. For a local import it also builds the
rows and events to insert (``service.prebuild``, what the batch path builds before it
takes the write slot), so this process is left with the de-duplication lookup, the
inserts and the commit. Two cores, each doing about half of the work.

At most a few batches are in flight (the child waits on the pipe), so memory stays flat.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from npsloop.services.ingest.importing import ImportSetupError, RecordMapper, RecordSource
from npsloop.services.ingest.schemas import ResponseIn
from npsloop.services.ingest.service import Prebuilt, Submission, prebuild
from npsloop.shared.clock import SystemClock

_RESPONSES = TypeAdapter(list[ResponseIn])
Values = list[str] | dict[str, Any]


@dataclass
class Batch:
    """Up to ``batch_size`` valid rows, and the rows rejected while reading them."""

    read: int = 0  # records read for this batch, rejected ones included
    bytes_read: int = 0  # of the file, so far
    lines: list[int] = field(default_factory=list)
    values: list[Values] = field(default_factory=list)
    payloads: list[ResponseIn] = field(default_factory=list)
    rejected: list[tuple[int, str, Values]] = field(default_factory=list)
    prebuilt: Prebuilt | None = None  # the payloads' rows and events, when built by the reading process


def read_batches(source: RecordSource, mapper: RecordMapper, batch_size: int) -> Iterator[Batch]:
    """The file's records in batches of ``batch_size`` valid rows (the last one may hold fewer)."""
    batch = Batch()
    for record in source:
        batch.read += 1
        body = mapper.response(record)
        if isinstance(body, str):
            batch.rejected.append((record.line, body, record.values))
            continue
        try:
            payload = ResponseIn.model_validate(body)
        except ValidationError as exc:
            batch.rejected.append((record.line, validation_reason(exc), record.values))
            continue
        batch.lines.append(record.line)
        batch.values.append(record.values)
        batch.payloads.append(payload)
        if len(batch.payloads) >= batch_size:
            batch.bytes_read = source.bytes_read
            yield batch
            batch = Batch()
    batch.bytes_read = source.bytes_read
    if batch.read:
        yield batch


def validation_reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


class ThreadReader:
    """Reads the next batch in a worker thread while the caller stores the current one."""

    def __init__(self, source: RecordSource, mapper: RecordMapper, batch_size: int) -> None:
        self._batches = read_batches(source, mapper, batch_size)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="npsloop-import-read")

    async def next(self) -> Batch | None:
        return await asyncio.get_running_loop().run_in_executor(self._thread, next, self._batches, None)

    def close(self) -> None:
        self._thread.shutdown(wait=True)


@dataclass(frozen=True)
class ReadPlan:
    """What the reading process needs to open the file and map it as this process did."""

    path: Path
    fmt: str | None
    preset: str | None
    mapping: dict[str, str]
    constants: dict[str, str]
    zone: str
    history: bool
    # For a local import: also build each batch's rows and events (service.prebuild) for
    # this de-duplication source and database dialect, with this clock offset.
    source: str | None = None
    dialect: str = "sqlite"
    clock_offset_seconds: float = 0.0


class ReadFailed(RuntimeError):
    """The reading process could not go on (the file became unreadable, the process died)."""


class ProcessReader:
    """Reads, maps and validates in a child process; this process receives ready batches.

    The child is started at once (its start-up overlaps the caller's: migrations, the
    first query) and stops when this reader closes, at the end of the file, or when this
    process dies (its next send fails). It is ``python -m`` this module rather than a
    multiprocessing child: spawning one of those runs the parent's ``__main__`` again,
    which not every program that calls the import guards.
    """

    def __init__(self, plan: ReadPlan, batch_size: int) -> None:
        arguments = json.dumps({**dataclasses.asdict(plan), "path": str(plan.path), "batch_size": batch_size})
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, arguments], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        assert self._process.stdout is not None
        self._conn = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdout.close()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="npsloop-import-receive")
        self._done = False

    async def next(self) -> Batch | None:
        # Received and parsed in a thread: the loop meanwhile waits on the database.
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._receive)

    def _receive(self) -> Batch | None:
        if self._done:
            return None
        try:
            kind, message = pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            self._done = True
            raise ReadFailed(f"the reading process stopped (exit status {self._process.wait()})") from None
        if kind == "end":
            self._done = True
            return None
        if kind == "error":
            self._done = True
            raise ReadFailed(message)
        read, bytes_read, lines, values, rejected, payloads_json, built = message
        try:
            payloads = _RESPONSES.validate_json(payloads_json)
        except ValidationError as exc:  # pragma: no cover - the child validated each with the same model
            raise ReadFailed(f"a batch from the reading process did not validate: {exc}") from None
        prebuilt = None if built is None else Prebuilt(*built)
        return Batch(read, bytes_read, lines, values, payloads, rejected, prebuilt)

    def close(self) -> None:
        if self._conn.closed:
            return
        self._conn.close()  # a child waiting to send gets a broken pipe and stops
        self._thread.shutdown(wait=True)
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _read_in_child(plan: ReadPlan, batch_size: int, conn: Connection) -> None:
    from zoneinfo import ZoneInfo

    from npsloop.services.ingest import importing

    try:
        preset = importing.preset_named(plan.preset)
        source = RecordSource(plan.path, fmt=plan.fmt, preset=preset)
        mapper = importing.build_mapper(
            source,
            preset=preset,
            mapping=plan.mapping,
            constants=plan.constants,
            zone=ZoneInfo(plan.zone),
            history=plan.history,
        )
        clock = SystemClock(plan.clock_offset_seconds)
        for batch in read_batches(source, mapper, batch_size):
            payloads_json = _RESPONSES.dump_json(batch.payloads)
            built = None
            if plan.source is not None and batch.payloads:
                submissions = [Submission(p, source=plan.source) for p in batch.payloads]
                prebuilt = prebuild(submissions, now=clock.now(), dialect=plan.dialect)
                built = (prebuilt.now, prebuilt.dialect, prebuilt.items)
            message = (batch.read, batch.bytes_read, batch.lines, batch.values, batch.rejected, payloads_json, built)
            conn.send_bytes(pickle.dumps(("batch", message), protocol=pickle.HIGHEST_PROTOCOL))
        conn.send_bytes(pickle.dumps(("end", None)))
    except (BrokenPipeError, ConnectionResetError):
        return  # the importing process went away: nothing to tell anyone
    except (OSError, ImportSetupError) as exc:
        conn.send_bytes(pickle.dumps(("error", f"reading {plan.path}: {exc}")))
    finally:
        conn.close()


def _main() -> None:
    import signal

    from npsloop.shared import gc_tuning

    # Ctrl-C reaches the whole process group: the importing process stops, closes the
    # pipe, and this one stops at its next send, without a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    given = json.loads(sys.argv[1])
    batch_size = given.pop("batch_size")
    plan = ReadPlan(**{**given, "path": Path(given["path"])})
    # Batches go out on what was stdout; anything printed by mistake goes to stderr instead.
    conn = Connection(os.dup(1))
    os.dup2(2, 1)
    gc_tuning.tune_for_service()  # many short-lived objects per row, as in a busy service
    _read_in_child(plan, batch_size, conn)


if __name__ == "__main__":
    _main()
