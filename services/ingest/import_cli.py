"""``npsloop import FILE``: the command line around services/ingest/import_run.py.

Kept free of heavy imports at module level: ``npsloop --help`` builds every parser.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from npsloop.shared.db import Database

PRESET_NAMES = ("delighted", "surveymonkey", "typeform", "qualtrics", "formbricks")

EPILOG = """targets for --map and --set:
  score comment external_id responded_at customer.id customer.email customer.name
  customer.account_id customer.segment survey.touchpoint survey.kind survey.channel
  lifecycle_stage properties.<name>
With a preset, --map adds to or overrides the preset's columns. In JSON Lines, a column
is a field name or a dotted path (person.id). See docs/importing.md.
exit status: 0 all stored, 1 some rows rejected, 2 nothing imported (bad options, server refused)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("file", type=Path, help="CSV (.csv, .tsv) or JSON Lines (.jsonl, .ndjson) export")
    parser.add_argument("--preset", choices=PRESET_NAMES, help="the tool the file was exported from")
    parser.add_argument("--map", dest="column_map", metavar="TARGET=COLUMN,...", help="which column holds what")
    parser.add_argument("--set", dest="constants", metavar="TARGET=VALUE,...", help="a value for every row")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="default: from the file's extension")
    parser.add_argument("--timezone", default="UTC", help="zone of timestamps written without one (default UTC)")
    parser.add_argument(
        "--follow-up",
        choices=("recent", "all"),
        default="recent",
        help="recent (default): answers already past their SLA are stored and classified but open no "
        "task or request; all: follow every answer up as if it arrived now",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be stored (JSON Lines); store nothing")
    parser.add_argument("--rejects", type=Path, help="where rejected rows go (default FILE.rejected.jsonl)")
    parser.add_argument("--source", default="import", help="de-duplication namespace when importing locally")
    parser.add_argument("--url", help="a running npsloop to import into (else this installation's database)")
    parser.add_argument("--key", help="API key with responses:write, with --url")
    parser.add_argument(
        "--reader",
        choices=("auto", "thread", "process"),
        default="auto",
        help="where the file is read, validated and drafted for a local import: in a second process "
        "(a second core) or in a thread of this one; auto (default): a process for a file of 1 MB or "
        "more on two cores or more",
    )


# Brings a local database to the newest schema (services.migrate.upgrade). The command line
# hands it in: migrations cover every service, and ingest does not import the composition root.
Migrate = Callable[["Database"], Awaitable[object]]


def run(settings: Any, args: argparse.Namespace, *, migrate: Migrate) -> int:
    """The command; messages on stderr, dry-run output on stdout; the exit status."""
    if settings.gc_tuning:
        from npsloop.services.ingest import import_run  # noqa: F401 (start-up imports, before the heap is frozen)
        from npsloop.shared import gc_tuning

        gc_tuning.tune_for_service()  # a bulk import allocates like a busy service
    try:
        return asyncio.run(run_async(settings, args, migrate=migrate))
    except KeyboardInterrupt:
        print(
            "\nnpsloop import: interrupted. Batches stored before are whole; running the same command "
            "again stores the rest.",
            file=sys.stderr,
        )
        return 130


async def run_async(settings: Any, args: argparse.Namespace, *, migrate: Migrate) -> int:
    from npsloop.services.ingest.importing import ImportSetupError

    try:
        return await _run(settings, args, migrate)
    except ImportSetupError as exc:
        print(f"npsloop import: {exc}", file=sys.stderr)
        return 2


async def _run(settings: Any, args: argparse.Namespace, migrate: Migrate) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    import httpx

    from npsloop.services.ingest import import_process, import_run, importing
    from npsloop.shared.clock import SystemClock
    from npsloop.shared.db import Database

    if args.url and not args.key:
        raise importing.ImportSetupError("--url needs --key (an API key with the responses:write scope)")
    if not args.file.is_file():
        raise importing.ImportSetupError(f"{args.file}: no such file")
    try:
        zone = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise importing.ImportSetupError(f"--timezone {args.timezone!r}: unknown time zone") from None
    preset = importing.preset_named(args.preset)
    mapping = importing.parse_map(args.column_map)
    constants = importing.parse_map(args.constants, constants=True)
    try:
        source = importing.RecordSource(args.file, fmt=args.format, preset=preset)
    except OSError as exc:
        raise importing.ImportSetupError(f"cannot read {args.file}: {exc.strerror}") from None
    db: Database | None = None
    client: httpx.AsyncClient | None = None
    rejects = None
    reader: import_process.ProcessReader | None = None
    batch_size = import_run.BATCH_SIZE
    local = not (args.url or args.dry_run)
    if args.reader == "process" and not local:
        raise importing.ImportSetupError("--reader process is for an import into this installation's database")
    try:
        history = args.follow_up == "recent"
        mapper = importing.build_mapper(
            source, preset=preset, mapping=mapping, constants=constants, zone=zone, history=history
        )
        print(
            "npsloop import: " + ", ".join(f"{t} <- {c!r}" for t, c in mapper.described.items()),
            file=sys.stderr,
        )
        if local and (args.reader == "process" or (args.reader == "auto" and import_process.pays(source.total_bytes))):
            # Started now, so that its start-up overlaps the migrations below.
            plan = import_process.ReadPlan(
                args.file,
                args.format,
                args.preset,
                mapping,
                constants,
                args.timezone,
                history,
                source=args.source,
                dialect="sqlite" if settings.is_sqlite else "postgresql",
                clock_offset_seconds=settings.clock_offset_seconds,
            )
            reader = import_process.ProcessReader(plan, batch_size)
            print("npsloop import: reading and validating in a second process", file=sys.stderr)
        if not args.url:
            if settings.is_sqlite:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            db = Database(settings.resolved_database_url)
            await migrate(db)
        store: import_run.Store
        if args.dry_run:
            store = import_run.DryRun(sys.stdout, db, args.source)
        elif args.url:
            client = httpx.AsyncClient(
                base_url=args.url.rstrip("/"), headers={"Authorization": f"Bearer {args.key}"}, timeout=120
            )
            store = import_run.RemoteStore(client)
        else:
            assert db is not None
            store = import_run.LocalStore(db, SystemClock(settings.clock_offset_seconds), args.source)
        rejects_path = args.rejects or args.file.with_name(args.file.name + ".rejected.jsonl")
        try:
            rejects = import_run.RejectsFile(rejects_path, source.headers)
        except OSError as exc:
            raise importing.ImportSetupError(f"cannot write rejected rows to {rejects_path}: {exc.strerror}") from None
        progress = import_run.Progress(sys.stderr, source.total_bytes)
        started = asyncio.get_running_loop().time()
        try:
            counts = await import_run.run_import(
                source, mapper, store, rejects=rejects, progress=progress, batch_size=batch_size, reader=reader
            )
        except import_run.ImportAborted as exc:
            print(
                f"npsloop import: stopped: {exc}. Rows sent before were stored; running the same "
                "command again skips them.",
                file=sys.stderr,
            )
            return 2
        seconds = max(asyncio.get_running_loop().time() - started, 1e-9)
    finally:
        if reader is not None:
            reader.close()
        source.close()
        if rejects is not None:
            rejects.close()
        if client is not None:
            await client.aclose()
        if db is not None:
            await db.dispose()
    verb = "would be stored" if args.dry_run else "stored"
    print(
        f"npsloop import: {counts.read:,} rows in {seconds:.1f} s ({counts.read / seconds:,.0f} rows/s): "
        f"{counts.stored:,} {verb}, {counts.duplicates:,} already stored, {counts.rejected:,} rejected"
        + (f" (line and reason in {rejects.path})" if counts.rejected else "")
        + ("; nothing was written" if args.dry_run else ""),
        file=sys.stderr,
    )
    return 1 if counts.rejected else 0
