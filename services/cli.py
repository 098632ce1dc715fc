"""The ``npsloop`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from datetime import UTC

from npsloop.services.ingest import import_cli
from npsloop.shared import gc_tuning
from npsloop.shared.settings import ConfigError, Settings, load_settings

log = logging.getLogger("npsloop.cli")

ROLE_HELP = """roles:
  api          HTTP API and dashboard (no background work)
  classifier   consume response events, emit response.classified
  followup     consume classifications, open tasks, request referrals
  deliveries   fan events out to webhooks and deliver them (retries, log)
  sla          warn and mark breaches on follow-up tasks
  relay        forward the outbox to Kafka (Kafka mode; several may run on PostgreSQL)
  retention    purge comments older than NPSLOOP_COMMENT_RETENTION_DAYS (does nothing when unset)
"""


def _runtime(settings: Settings):
    from npsloop.services.runtime import Runtime

    return Runtime.build(settings)


async def _migrate(settings: Settings, *, server: bool = False) -> None:
    """Bring the database to the newest schema and say which database that is (stderr, or
    the log for a server), with a warning when there was none: a command run from another
    directory silently made a new ``./.npsloop`` and its key then got 401 from the server."""
    from sqlalchemy import make_url

    from npsloop.services.migrate import upgrade
    from npsloop.shared.db import Database

    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    db = Database(url)
    try:
        created = await upgrade(db)
    finally:
        await db.dispose()
    parsed = make_url(url)
    shown = parsed.database if settings.is_sqlite else parsed.render_as_string(hide_password=True)
    if created:
        how = (
            "set NPSLOOP_DATA_DIR or NPSLOOP_DATABASE_URL (or run from its directory)"
            if not settings.database_url
            else "check NPSLOOP_DATABASE_URL"
        )
        message = f"created a new, empty database at {shown}; if you meant an existing one, {how}"
    else:
        message = f"using the database at {shown}"
    if server:
        (log.warning if created else log.info)(message, extra={"database": shown})
    else:
        print(f"npsloop: {'warning: ' if created else ''}{message}", file=sys.stderr)


# What ``up`` runs in its own process; the deliveries role runs there too on SQLite and in a
# second one on PostgreSQL, unless NPSLOOP_DELIVERY_PROCESS says otherwise
# (services/delivery_process.py, Settings.sends_deliveries_from_second_process).
UP_ROLES = ("api", "classifier", "followup", "sla", "relay", "retention")


class PortUnavailable(ConfigError):
    """The HTTP port cannot be bound; raised before anything else starts."""


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before migrations or workers start: a port in use stops
    start-up at once with one line, instead of a server running its workers without HTTP."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; stop what uses it or choose another with --port or NPSLOOP_PORT" if port else ""
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


async def _serve(
    settings: Settings, *, host: str, port: int, roles: tuple[str, ...], delivery_child: bool = False
) -> None:
    if "api" in roles:
        listener = _listen(host, port)
        try:
            await _serve_api(settings, listener, host=host, port=port, roles=roles, delivery_child=delivery_child)
        finally:
            listener.close()
        return
    await _migrate(settings, server=True)
    runtime = _runtime(settings)
    worker_roles = tuple(r for r in roles if r != "api")
    await runtime.ensure_transport_reachable(worker_roles)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start(worker_roles)
    if settings.gc_tuning:
        gc_tuning.tune_for_service()
    await stop.wait()
    await runtime.close()


async def _serve_api(
    settings: Settings,
    listener: socket.socket,
    *,
    host: str,
    port: int,
    roles: tuple[str, ...],
    delivery_child: bool = False,
) -> None:
    import uvicorn

    from npsloop.services.app import create_app
    from npsloop.shared.slow_clients import bounded_http_protocol

    await _migrate(settings, server=True)
    runtime = _runtime(settings)
    worker_roles = tuple(r for r in roles if r != "api")
    await runtime.ensure_transport_reachable(worker_roles)
    app = create_app(runtime, worker_roles=worker_roles)
    delivery_process = _delivery_process(runtime, delivery_child)
    app.state.delivery_process = delivery_process
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        http=bounded_http_protocol(settings.request_header_timeout_seconds),
    )
    server = uvicorn.Server(config)
    if settings.gc_tuning:
        gc_tuning.tune_for_service()
    log.info(
        "npsloop listening",
        extra={"url": f"http://{host}:{port}", "database": settings.resolved_database_url.split("://")[0]},
    )
    if delivery_process is not None:
        delivery_process.start()
    try:
        await server.serve(sockets=[listener])
    finally:
        if delivery_process is not None:
            await delivery_process.stop()
    await runtime.db.dispose()


def _delivery_process(runtime, delivery_child: bool):
    """For ``up`` with its delivery worker in a second process: the parent's side of it, or None."""
    if not delivery_child:
        return None
    from npsloop.services.delivery_process import DeliveryProcess

    return DeliveryProcess(runtime.db)


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from npsloop.shared import auth
    from npsloop.shared.clock import SystemClock
    from npsloop.shared.db import Database

    await _migrate(settings)
    db = Database(settings.resolved_database_url)
    clock = SystemClock()
    try:
        async with db.unit_of_work() as session:
            if args.keys_command == "create":
                row, clear = await auth.create_key(
                    session, name=args.name, scopes=auth.parse_scopes(args.scopes), clock=clock
                )
                print(
                    f"created key {row.id} '{row.name}' with scopes {','.join(row.scopes)}; it is shown only once:",
                    file=sys.stderr,
                )
                print(clear)
            elif args.keys_command == "list":
                for row in await auth.list_keys(session):
                    state = f"revoked {row.revoked_at.isoformat()}" if row.revoked_at else "active"
                    print(f"{row.id}\t{row.name}\t{','.join(row.scopes)}\t{row.created_at.isoformat()}\t{state}")
            elif args.keys_command == "revoke":
                if not await auth.revoke_key(session, args.key_id, clock=clock):
                    print(f"no key with id {args.key_id}", file=sys.stderr)
                    return 1
                print(f"revoked {args.key_id}", file=sys.stderr)
    except auth.InvalidKeyRequest as exc:
        print(f"npsloop keys: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    return 0


def _classify(settings: Settings, args: argparse.Namespace) -> int:
    from npsloop.services.classifier.commands import run_classify

    runtime_classifier = _classifier_only(settings)
    # closed by the with below (stdin too, as the process ends there)
    infile = open(args.file, encoding="utf-8") if args.file and args.file != "-" else sys.stdin  # noqa: SIM115
    with infile:
        count = run_classify(infile, sys.stdout, runtime_classifier)
    print(f"classified {count} comments with {runtime_classifier.version}", file=sys.stderr)
    return 0


def _classifier_only(settings: Settings):
    from npsloop.services.classifier.active import load_classifier
    from npsloop.shared.policy import load_policy

    return load_classifier(themes=load_policy(settings.policy_file).theme_definitions(), data_dir=settings.data_dir)


def _classifier_command(settings: Settings, args: argparse.Namespace) -> int:
    """``classifier train`` and ``classifier evaluate``: both read the stored corrections
    and ``--labels``; bad labels, too few of them or a missing extra get a message, not a traceback."""
    from npsloop.services.classifier.commands import run_evaluate, run_train
    from npsloop.services.classifier.embeddings import EmbeddingsUnavailable
    from npsloop.shared.policy import load_policy

    name = f"npsloop classifier {args.classifier_command}"
    themes = load_policy(settings.policy_file).theme_definitions()
    corrections = asyncio.run(_stored_corrections(settings))
    try:
        labels = open(args.labels, encoding="utf-8") if args.labels else None  # noqa: SIM115 (closed below)
    except OSError as exc:
        print(f"{name}: cannot read --labels {args.labels}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        if args.classifier_command == "evaluate":
            run_evaluate(
                labels_file=labels,
                corrections=corrections,
                themes=themes,
                folds=args.folds,
                outfile=sys.stdout,
                as_json=args.json,
            )
        else:
            print(
                run_train(
                    labels_file=labels,
                    corrections=corrections,
                    themes=themes,
                    data_dir=settings.data_dir,
                    embeddings=args.embeddings,
                )
            )
    except EmbeddingsUnavailable as exc:
        print(f"{name} --embeddings: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    finally:
        if labels:
            labels.close()
    return 0


def _reclassify(settings: Settings, args: argparse.Namespace) -> int:
    from npsloop.services.classifier.replay import reclassify
    from npsloop.shared.clock import SystemClock
    from npsloop.shared.db import Database

    classifier = _classifier_only(settings)

    async def run() -> int:
        await _migrate(settings)
        db = Database(settings.resolved_database_url)
        try:
            return await reclassify(
                db, classifier=classifier, clock=SystemClock(settings.clock_offset_seconds), since=args.since
            )
        finally:
            await db.dispose()

    count = asyncio.run(run())
    print(f"reclassified {count} responses with {classifier.version}", file=sys.stderr)
    return 0


def _since(value: str):
    """--since: an ISO date or date-time; without a zone it is UTC."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date such as 2026-01-31, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _stored_corrections(settings: Settings) -> list:
    """Corrections people made through the API (none until corrections are stored)."""
    try:
        from npsloop.services.classifier.corrections import load_corrections
    except ImportError:
        return []
    from npsloop.shared.db import Database

    await _migrate(settings)
    db = Database(settings.resolved_database_url)
    try:
        async with db.sessions() as session:
            return await load_corrections(session)
    finally:
        await db.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="npsloop",
        description="Close the Net Promoter Score loop.",
        epilog="Configuration: NPSLOOP_* environment variables; see README.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up", help="migrate, then run API, dashboard and every worker (delivery worker in a second process)"
    )
    up.add_argument("--host", default=None)
    up.add_argument("--port", type=int, default=None)

    serve = sub.add_parser(
        "serve",
        help="run one role (scaled deployments)",
        epilog=ROLE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("role", choices=["api", "classifier", "followup", "deliveries", "sla", "relay", "retention"])
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="run migrations to the newest schema")

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; printed once as the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated, e.g. responses:write,tasks:read")
    keys_sub.add_parser("list", help="list keys (never their secret)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")

    classify = sub.add_parser("classify", help="classify JSON Lines {id, score, comment} from FILE or stdin")
    classify.add_argument("file", nargs="?")

    classifier = sub.add_parser("classifier", help="the classifier model")
    classifier_sub = classifier.add_subparsers(dest="classifier_command", required=True)
    train = classifier_sub.add_parser("train", help="fit the organisation's own model from corrections (+ labels)")
    train.add_argument("--labels", help='JSON Lines {"comment","score","themes":[ids],"sentiment"}')
    train.add_argument(
        "--embeddings",
        action="store_true",
        help="theme and sentiment heads read MiniLM sentence embeddings in place of the static "
        "word vectors (needs the npsloop[ml] extra; "
        "~100 comments/s per core to classify)",
    )

    evaluate = classifier_sub.add_parser(
        "evaluate", help="cross-validate training on the stored corrections (+ labels) against the built-in model"
    )
    evaluate.add_argument("--labels", help='JSON Lines {"comment","score","themes":[ids],"sentiment"}')
    evaluate.add_argument("--folds", type=int, default=5, help="folds of the cross-validation (2-20, default 5)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    reclassify = sub.add_parser("reclassify", help="re-run the current classifier over stored responses (replay)")
    reclassify.add_argument(
        "--since",
        type=_since,
        default=None,
        help="only responses received from this ISO date or date-time on (UTC unless a zone is given)",
    )
    import_cli.add_arguments(sub.add_parser("import", help="bring history from CSV or JSON Lines exports"))
    dlq = sub.add_parser("dlq", help="dead-lettered events: list, show, redrive")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser(
        "list", help="waiting dead letters: id, consumer, type, event id, time, state, reason"
    )
    dlq_list.add_argument("--all", action="store_true", help="include dead letters already redriven")
    dlq_list.add_argument("--consumer", help="only this consumer's dead letters")
    dlq_show = dlq_sub.add_parser("show", help="one dead letter as JSON: error, attempts, envelope")
    dlq_show.add_argument("id", type=int)
    dlq_redrive = dlq_sub.add_parser("redrive", help="run dead letters through their consumer's handler again")
    dlq_redrive.add_argument("ids", type=int, nargs="*", help="dead letter ids")
    dlq_redrive.add_argument("--all", action="store_true", help="every dead letter not yet redriven")
    return parser


async def _dlq(settings: Settings, args: argparse.Namespace) -> int:
    from npsloop.services import dead_letters

    await _migrate(settings)
    runtime = _runtime(settings)
    try:
        if args.dlq_command == "list":
            return await dead_letters.list_dead_letters(
                runtime, include_redriven=args.all, consumer=args.consumer, out=sys.stdout
            )
        if args.dlq_command == "show":
            return await dead_letters.show_dead_letter(runtime, args.id, out=sys.stdout)
        if not args.ids and not args.all:
            print("npsloop dlq redrive: give dead letter ids or --all", file=sys.stderr)
            return 2
        return await dead_letters.redrive_dead_letters(runtime, args.ids, redrive_all=args.all, out=sys.stdout)
    finally:
        await runtime.db.dispose()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Database drivers run in threads (aiosqlite) and hand results back to the event loop.
    # With the default 5 ms GIL switch interval every such hand-off can wait 5 ms behind a
    # busy loop; 0.5 ms cuts ingest latency and lifts consumer throughput several times.
    sys.setswitchinterval(0.0005)
    try:
        settings = load_settings()
        from npsloop.shared.observability import configure_logging

        configure_logging(settings.log_level, settings.log_format)
        return _dispatch(settings, args)
    except ConfigError as exc:
        print(f"npsloop: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    if args.command in ("up", "serve"):
        from npsloop.services.runtime import WEBHOOK_FAN_OUT, run_server
    if args.command == "up":
        separate = settings.sends_deliveries_from_second_process
        run_server(
            _serve(
                settings,
                host=args.host or settings.host,
                port=args.port or settings.port,
                roles=(*UP_ROLES, WEBHOOK_FAN_OUT) if separate else (*UP_ROLES, "deliveries"),
                delivery_child=separate,
            )
        )
        return 0
    if args.command == "serve":
        run_server(
            _serve(settings, host=args.host or settings.host, port=args.port or settings.port, roles=(args.role,))
        )
        return 0
    if args.command == "db":
        asyncio.run(_migrate(settings))
        print("database is at the newest schema", file=sys.stderr)
        return 0
    if args.command == "keys":
        return asyncio.run(_keys(settings, args))
    if args.command == "dlq":
        return asyncio.run(_dlq(settings, args))
    if args.command == "classify":
        return _classify(settings, args)
    if args.command == "classifier":
        return _classifier_command(settings, args)
    if args.command == "reclassify":
        return _reclassify(settings, args)
    if args.command == "import":
        from npsloop.services.migrate import upgrade

        return import_cli.run(settings, args, migrate=upgrade)
    raise AssertionError(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
