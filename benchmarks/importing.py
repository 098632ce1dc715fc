"""`npsloop import` into the embedded default (SQLite), rows/s and peak memory.

    .venv/bin/python -m benchmarks.importing [--rows 100000] [--rounds 3] [--memory-rows 1000000]

Writes a Delighted-layout CSV of answers from 2023 (so, with the default --follow-up
recent, old history that opens no follow-up) and imports it with the `npsloop` command into
a scratch data directory, as a user would: ``--rounds`` times with each of ``--reader
thread`` (one process) and ``--reader process`` (the file read, validated and drafted in a
second process; the default for such a file on two cores), alternating, so both are
measured in the same minutes. Prints each run's rows/s, CPU per row (both processes) and
peak resident memory, the medians, and a baseline measured in the same run: this process
reading the same file with the csv module and validating each row as ResponseIn — the
part of the work no import can skip — so figures from a busy machine can be compared.
With --memory-rows, a second, larger file is imported too: peak memory should not grow
with the file. After each run the rows stored and the events logged are counted; the
script fails unless both equal the rows in the file.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.common import NPSLOOP, npsloop_env, scratch_dir

COMMENTS = [
    "Support took days to answer",
    "Great product, easy to set up",
    "Too expensive for what it does",
    "",
    "Crashes a lot when I export",
    "The new dashboard is lovely, but the mobile app is slow",
]


def write_export(path: Path, rows: int) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Response ID", "Score", "Comment", "Name", "Email", "Response timestamp"])
        for n in range(rows):
            out.writerow(
                [
                    n + 1,
                    n % 11,
                    COMMENTS[n % len(COMMENTS)],
                    f"Person {n}",
                    f"person{n}@example.com",
                    f"2023-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
                ]
            )


def baseline(path: Path) -> float:
    """Rows/s of reading ``path`` and validating each row as ResponseIn, storing nothing."""
    from npsloop.services.ingest.schemas import ResponseIn

    started = time.perf_counter()
    count = 0
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            ResponseIn.model_validate(
                {
                    "score": int(row["Score"]),
                    "comment": row["Comment"] or None,
                    "customer": {"id": row["Email"], "email": row["Email"], "name": row["Name"]},
                    "responded_at": row["Response timestamp"],
                    "external_id": "delighted:" + row["Response ID"],
                    "history": True,
                }
            )
            count += 1
    return count / (time.perf_counter() - started)


def run_import(path: Path, env: dict[str, str], cwd: Path, reader: str) -> tuple[float, float, float, str]:
    """(rows/s the command reported, CPU seconds of the command and its reading process,
    the peak RSS MB of the larger of the two, its summary line)."""
    process = subprocess.Popen(
        [*NPSLOOP, "import", str(path), "--preset", "delighted", "--reader", reader],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    stderr = process.stderr.read()
    # The command waits for its reading process, so that one's CPU is counted here too.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    summary = stderr.strip().splitlines()[-1]
    if process.returncode != 0:
        raise SystemExit(f"npsloop import exited with {process.returncode}:\n{stderr[-2000:]}")
    rate = float(re.search(r"\(([\d,]+) rows/s\)", summary).group(1).replace(",", ""))
    return rate, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, summary


async def stored(data_dir: Path) -> tuple[int, int]:
    from sqlalchemy import func, select

    from npsloop.services.ingest.models import Response
    from npsloop.shared.db import Database
    from npsloop.shared.models import EventLogEntry
    from npsloop.shared.settings import Settings

    db = Database(Settings(data_dir=data_dir).resolved_database_url)
    try:
        async with db.sessions() as session:
            return (
                await session.scalar(select(func.count()).select_from(Response)),
                await session.scalar(select(func.count()).select_from(EventLogEntry)),
            )
    finally:
        await db.dispose()


def measure(rows: int, work: Path, label: str, readers: list[str], rounds: int) -> float:
    """Imports the same file ``rounds`` times with each reader, alternating; the largest peak RSS."""
    export = work / f"export-{rows}.csv"
    write_export(export, rows)
    reference = baseline(export)
    print(f"{label}: {rows:,} rows, {export.stat().st_size / 1e6:.0f} MB file")
    print(f"  baseline (csv + ResponseIn validation only, this process): {reference:,.0f} rows/s")
    rates: dict[str, list[float]] = {reader: [] for reader in readers}
    peak = 0.0
    for round_ in range(rounds):
        for reader in readers if round_ % 2 == 0 else readers[::-1]:
            data = work / f"data-{rows}-{reader}-{round_}"
            load = os.getloadavg()[0]
            rate, cpu, rss, _ = run_import(export, npsloop_env(data), work, reader)
            rates[reader].append(rate)
            peak = max(peak, rss)
            print(
                f"  --reader {reader:7}: {rate:7,.0f} rows/s, {cpu / rows * 1e6:3.0f} us CPU per row, "
                f"peak RSS {rss:4.0f} MB, {rate / reference:.2f}x baseline (load {load:.1f})"
            )
            responses, logged = asyncio.run(stored(data))
            if responses != rows or logged != rows:
                raise SystemExit(f"{data}: {responses:,} responses, {logged:,} events for {rows:,} rows")
            shutil.rmtree(data)
    for reader, figures in rates.items():
        print(f"  --reader {reader}: median {statistics.median(figures):,.0f} rows/s over {len(figures)} runs")
    if len(readers) == 2:
        ratios = [b / a for a, b in zip(*rates.values())]
        print(f"  {readers[1]} / {readers[0]}, run by run: {', '.join(f'{r:.2f}x' for r in ratios)}")
    print("  every run stored one response and one event per row")
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--memory-rows", type=int, default=0, help="also import a file this large and compare memory")
    parser.add_argument("--rounds", type=int, default=3, help="imports per reader, alternating (default 3)")
    parser.add_argument(
        "--readers", default="thread,process", help="which --reader values to compare (default thread,process)"
    )
    args = parser.parse_args()
    readers = args.readers.split(",")
    work = scratch_dir("bench-import-")
    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    small = measure(args.rows, work, "throughput", readers, args.rounds)
    if args.memory_rows:
        large = measure(args.memory_rows, work, "memory", ["process"], 1)
        print(f"peak RSS {small:.0f} MB for {args.rows:,} rows, {large:.0f} MB for {args.memory_rows:,} rows")


if __name__ == "__main__":
    main()
