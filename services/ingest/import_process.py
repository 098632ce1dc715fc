"""``npsloop import``'s reading process: the file read, validated and drafted on a second core.

In one process the reading thread and the storing loop take turns on one interpreter
lock, so an import runs at the speed of all its work added together. Here a child
process reads, maps and validates each record with ``ResponseIn`` and drafts the batch's
rows and ``response.received`` events (``service.draft``, as the batch path does); the
importing process builds the rows' driver values, decides and writes them
(``service.store_drafts``), as it would a batch it drafted itself. That split gives the
two processes about the same work.

What crosses the pipe is plain data: each draft's row, event id and event, pickled —
not the validated models. (An earlier version sent the payloads and validated and drafted them
again on this side; that doubled the work it was meant to split, and it did not pay.)

The child is ``python -m`` this module rather than a multiprocessing child: spawning one
of those runs the parent's ``__main__`` again, which not every program that calls the
import guards. It stops at the end of the file, when the importing process closes the
pipe, or when its next send fails because that process died.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from npsloop.services.ingest.import_reader import Batch, ReadFailed, read_batches
from npsloop.services.ingest.importing import ImportSetupError
from npsloop.services.ingest.service import Draft, Drafts, Submission, draft
from npsloop.shared.settings import usable_cores

# From this size on a local import reads in a second process: below it, the child's
# start-up (an interpreter and the models, a few tenths of a second) costs more than it saves.
MIN_BYTES = 1_000_000


def pays(total_bytes: int) -> bool:
    """Whether a local import of ``total_bytes`` reads in a second process: a big file, two cores or more."""
    return total_bytes >= MIN_BYTES and usable_cores() >= 2


@dataclass(frozen=True)
class ReadPlan:
    """What the reading process needs to read and draft the file as this process would."""

    path: Path
    fmt: str | None
    preset: str | None
    mapping: dict[str, str]
    constants: dict[str, str]
    zone: str
    history: bool
    source: str  # the de-duplication source the rows are stored under
    dialect: str  # the database the drafts are built for
    clock_offset_seconds: float = 0.0


class ProcessReader:
    """Batches read, validated and drafted by a child process (``Batch.drafts`` set)."""

    def __init__(self, plan: ReadPlan, batch_size: int) -> None:
        arguments = json.dumps({**dataclasses.asdict(plan), "path": str(plan.path), "batch_size": batch_size})
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, arguments], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        assert self._process.stdout is not None
        self._conn = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdout.close()
        # Received and unpickled in a thread: the loop meanwhile writes the last batch.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="npsloop-import-receive")
        self._done = False

    async def next(self) -> Batch | None:
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
        read, bytes_read, lines, values, rejected, drafted = message
        drafts = None
        if drafted is not None:
            now, dialect, items = drafted
            drafts = Drafts(now, dialect, [Draft(row, event_id, entry=entry) for row, event_id, entry in items])
        return Batch(read, bytes_read, lines, values, [], rejected, drafts)

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


def _drafted(plan: ReadPlan, batch: Batch, now: datetime) -> tuple[datetime, str, list[tuple[Any, ...]]] | None:
    if not batch.payloads:
        return None
    submissions = [Submission(p, source=plan.source) for p in batch.payloads]
    drafts = draft(submissions, now=now, dialect=plan.dialect, build=False)
    drafts.build_events(drafts.items)
    return drafts.now, drafts.dialect, [(d.row, d.event_id, d.entry) for d in drafts.items]


def _read_in_child(plan: ReadPlan, batch_size: int, conn: Connection) -> None:
    from zoneinfo import ZoneInfo

    from npsloop.services.ingest import importing
    from npsloop.shared.clock import SystemClock

    clock = SystemClock(plan.clock_offset_seconds)
    try:
        preset = importing.preset_named(plan.preset)
        source = importing.RecordSource(plan.path, fmt=plan.fmt, preset=preset)
        mapper = importing.build_mapper(
            source,
            preset=preset,
            mapping=plan.mapping,
            constants=plan.constants,
            zone=ZoneInfo(plan.zone),
            history=plan.history,
        )
        for batch in read_batches(source, mapper, batch_size):
            message = (
                batch.read,
                batch.bytes_read,
                batch.lines,
                batch.values,
                batch.rejected,
                _drafted(plan, batch, clock.now()),
            )
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

    # Ctrl-C reaches the whole process group: the importing process stops and closes the
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
