"""Reading an import's file: records mapped and validated into batches, in a worker thread.

The next batch is read while the last one is stored. A big local import reads in a
second process instead (services/ingest/import_process.py). At most a few batches are
in flight, so memory stays flat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from npsloop.services.ingest.importing import RecordMapper, RecordSource
from npsloop.services.ingest.schemas import ResponseIn

if TYPE_CHECKING:
    from npsloop.services.ingest.service import Drafts

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
    # The valid rows' drafts, when another process built them (then ``payloads`` is empty).
    drafts: Drafts | None = None

    @property
    def valid(self) -> int:
        return len(self.lines)


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


class ReadFailed(RuntimeError):
    """Reading could not go on (the file became unreadable part-way)."""
