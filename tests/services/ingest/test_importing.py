"""``npsloop import``: each tool's export layout, bad rows, re-runs, dry runs, and the
follow-up of imported history — stored through the batch path on both databases.

The sample files are written here, row by row, from each tool's documented export layout
(see docs/importing.md for the sources); the people and answers in them are made up.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from npsloop.services.cli import build_parser
from npsloop.services.followup.models import Task
from npsloop.services.ingest import import_cli
from npsloop.services.ingest.import_run import Progress
from npsloop.services.ingest.models import Response
from npsloop.services.migrate import upgrade
from npsloop.shared.db import Database
from npsloop.shared.models import EventLogEntry

NPS_Q = "How likely is it that you would recommend Acme to a friend or colleague?"
REASON_Q = "What is the primary reason for your score?"


@pytest.fixture(autouse=True, params=["thread", "process"])
def reading(request, monkeypatch) -> str:
    """Every local import here runs twice: read in a thread, and read, validated and drafted
    in the second process (as a file of a megabyte or more would be), which must store
    exactly the same."""
    from npsloop.services.ingest import import_process

    if request.param == "process":
        monkeypatch.setattr(import_process, "MIN_BYTES", 0)
    monkeypatch.setattr(sys.modules[__name__], "READING", request.param)
    return request.param


READING = "thread"


async def run_import(settings, capsys, *args: str) -> tuple[int, str, str]:
    args = tuple(map(str, args))
    status = await import_cli.run_async(settings, build_parser().parse_args(["import", *args]), migrate=upgrade)
    out, err = capsys.readouterr()
    local = not {"--url", "--dry-run"} & set(args) and "thread" not in args
    if status != 2 and local and READING == "process":
        assert "in a second process" in err, err  # the reading process did read this file
    return status, out, err


async def stored(settings) -> list[Response]:
    db = Database(settings.resolved_database_url)
    try:
        async with db.sessions() as session:
            return list((await session.scalars(select(Response).order_by(Response.external_id))).all())
    finally:
        await db.dispose()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rejects_of(path: Path) -> list[dict]:
    rejected = path.with_name(path.name + ".rejected.jsonl")
    return [json.loads(line) for line in rejected.read_text().splitlines()] if rejected.exists() else []


# --- one sample per preset, in each tool's column layout --------------------------------


async def test_a_delighted_export_is_stored_with_its_ids_scores_comments_and_times(settings, capsys, tmp_path):
    export = write(
        tmp_path / "delighted.csv",
        "Response ID,Score,Comment,Name,Email,Response timestamp\n"
        "5001,10,Setup took five minutes,Ann Lee,ann@example.com,2024-03-01T10:00:00Z\n"
        '5002,3,"Slow, and support never answered",Bo Chen,bo@example.com,2024-03-02T11:30:00+01:00\n'
        "5003,8,,Cy Diaz,cy@example.com,1709460000\n",
    )
    status, _, err = await run_import(settings, capsys, export, "--preset", "delighted")
    assert status == 0, err
    assert "3 stored, 0 already stored, 0 rejected" in err
    rows = {r.external_id: r for r in await stored(settings)}
    assert set(rows) == {"delighted:5001", "delighted:5002", "delighted:5003"}
    bo = rows["delighted:5002"]
    assert (bo.score, bo.comment, bo.customer_id) == (3, "Slow, and support never answered", "bo@example.com")
    assert bo.customer == {"id": "bo@example.com", "email": "bo@example.com", "name": "Bo Chen"}
    assert bo.responded_at == datetime(2024, 3, 2, 10, 30, tzinfo=UTC)
    assert rows["delighted:5003"].responded_at == datetime.fromtimestamp(1709460000, UTC)
    assert rows["delighted:5003"].comment is None
    assert all(r.history and r.source == "import" for r in rows.values())


async def test_a_delighted_api_dump_in_json_lines_is_read_by_field_names(settings, capsys, tmp_path):
    export = write(
        tmp_path / "delighted.jsonl",
        json.dumps({"id": "77", "person": "p-9", "score": 6, "comment": "Pricey", "created_at": 1713418460}) + "\n",
    )
    status, _, err = await run_import(settings, capsys, export, "--preset", "delighted")
    assert status == 0, err
    [row] = await stored(settings)
    assert (row.external_id, row.customer_id, row.score, row.comment) == ("delighted:77", "p-9", 6, "Pricey")


async def test_a_surveymonkey_export_with_its_second_header_row_and_us_dates(settings, capsys, tmp_path):
    export = write(
        tmp_path / "surveymonkey.csv",
        "Respondent ID,Collector ID,Start Date,End Date,IP Address,Email Address,First Name,Last Name,"
        f'Custom Data 1,"{NPS_Q}","{REASON_Q}"\n'
        ",,,,,,,,,Response,Open-Ended Response\n"
        "114000000001,400000001,06/10/2024 08:01:12 AM,06/10/2024 08:03:40 PM,203.0.113.5,ann@example.com,"
        "Ann,Lee,cust-1,9,Quick and friendly support\n"
        "114000000002,400000001,06/11/2024 09:00:00 AM,06/11/2024 09:02:00 AM,203.0.113.6,,Bo,Chen,cust-2,"
        "2,Invoices are wrong every month\n",
    )
    status, _, err = await run_import(settings, capsys, export, "--preset", "surveymonkey")
    assert status == 0, err
    rows = {r.external_id: r for r in await stored(settings)}
    ann = rows["surveymonkey:114000000001"]
    assert (ann.score, ann.comment, ann.customer_id) == (9, "Quick and friendly support", "cust-1")
    assert ann.customer["email"] == "ann@example.com"
    assert ann.responded_at == datetime(2024, 6, 10, 20, 3, 40, tzinfo=UTC)
    assert rows["surveymonkey:114000000002"].score == 2


async def test_a_typeform_export_takes_customer_ids_from_hidden_fields(settings, capsys, tmp_path):
    export = write(
        tmp_path / "typeform.csv",
        "#,How likely are you to recommend us to a friend?,What's the main reason for your score?,"
        "user_id,email,Start Date (UTC),Submit Date (UTC),Network ID\n"
        "k2m1x7zq0p,7,Does the job,u-100,ann@example.com,2024-02-01 09:59:10,2024-02-01 10:00:02,8a1b2c\n",
    )
    status, _, err = await run_import(settings, capsys, export, "--preset", "typeform")
    assert status == 0, err
    [row] = await stored(settings)
    assert (row.external_id, row.customer_id, row.score, row.comment) == (
        "typeform:k2m1x7zq0p",
        "u-100",
        7,
        "Does the job",
    )
    assert row.responded_at == datetime(2024, 2, 1, 10, 0, 2, tzinfo=UTC)


async def test_a_qualtrics_export_skips_its_label_rows_and_finds_the_nps_question(settings, capsys, tmp_path):
    meta = (
        "StartDate,EndDate,Status,IPAddress,Progress,Duration (in seconds),Finished,RecordedDate,ResponseId,"
        "RecipientLastName,RecipientFirstName,RecipientEmail,ExternalReference,DistributionChannel,UserLanguage"
    )
    labels = (
        "Start Date,End Date,Response Type,IP Address,Progress,Duration (in seconds),Finished,Recorded Date,"
        "Response ID,Recipient Last Name,Recipient First Name,Recipient Email,External Data Reference,"
        "Distribution Channel,User Language"
    )
    import_ids = ",".join(
        f'"{{""ImportId"":""{name}""}}"'
        for name in [
            "startDate",
            "endDate",
            "status",
            "ipAddress",
            "progress",
            "duration",
            "finished",
            "recordedDate",
            "_recordId",
            "recipientLastName",
            "recipientFirstName",
            "recipientEmail",
            "externalDataReference",
            "distributionChannel",
            "userLanguage",
            "QID1",
            "QID1_NPS_GROUP",
            "QID2_TEXT",
        ]
    )
    export = write(
        tmp_path / "qualtrics.csv",
        f"{meta},Q1,Q1_NPS_GROUP,Q2\n"
        f'{labels},"{NPS_Q}","{NPS_Q} - Group","{REASON_Q}"\n'
        f"{import_ids}\n"
        "2024-05-01 10:00:00,2024-05-01 10:02:00,0,198.51.100.7,100,120,1,2024-05-01 10:02:01,R_1abcDEFghi,"
        "Lee,Ann,ann@example.com,cust-1,email,EN,3,1,Billing is confusing\n",
    )
    status, _, err = await run_import(
        settings, capsys, export, "--preset", "qualtrics", "--map", "comment=Q2", "--timezone", "America/Denver"
    )
    assert status == 0, err
    [row] = await stored(settings)
    assert (row.external_id, row.customer_id, row.score, row.comment) == (
        "qualtrics:R_1abcDEFghi",
        "cust-1",
        3,
        "Billing is confusing",
    )
    assert row.responded_at == datetime(2024, 5, 1, 16, 2, 1, tzinfo=UTC)  # 10:02:01 in Denver (MDT)


async def test_a_formbricks_export_uses_the_user_id_and_the_question_headlines(settings, capsys, tmp_path):
    export = write(
        tmp_path / "formbricks.csv",
        "No.,Response ID,Timestamp,Finished,Survey ID,Formbricks ID (internal),User ID,Notes,Tags,url,"
        f'"1. {NPS_Q}","2. What is the main reason for your score?",email\n'
        "1,clx1resp0001,2024-06-15 10:00:00,Yes,clx1surv0001,clx1cont0001,user-42,,,https://app.example.com,"
        "10,Everything just works,ann@example.com\n",
    )
    status, _, err = await run_import(settings, capsys, export, "--preset", "formbricks")
    assert status == 0, err
    [row] = await stored(settings)
    assert (row.external_id, row.customer_id, row.score, row.comment) == (
        "formbricks:clx1resp0001",
        "user-42",
        10,
        "Everything just works",
    )
    assert row.customer["email"] == "ann@example.com"


# --- any other layout, with --map and --set ---------------------------------------------


async def test_map_and_set_place_any_column_and_constant(settings, capsys, tmp_path):
    export = write(
        tmp_path / "custom.csv",
        "rating;why;acct;plan;when\n".replace(";", ",") + "4,Too slow,A-1,pro,2023-11-02\n",
    )
    status, _, err = await run_import(
        settings,
        capsys,
        export,
        "--map",
        "score=rating,comment=why,customer.id=acct,properties.plan=plan,responded_at=when",
        "--set",
        "survey.touchpoint=renewal,properties.imported_from=legacy-crm",
    )
    assert status == 0, err
    [row] = await stored(settings)
    assert (row.score, row.comment, row.customer_id, row.touchpoint) == (4, "Too slow", "A-1", "renewal")
    assert row.properties == {"plan": "pro", "imported_from": "legacy-crm"}
    assert row.responded_at == datetime(2023, 11, 2, tzinfo=UTC)
    assert row.external_id.startswith("row:")  # no id column: a hash of the answer


async def test_a_map_naming_a_missing_column_stops_before_anything_is_read(settings, capsys, tmp_path):
    export = write(tmp_path / "x.csv", "rating,acct\n4,A-1\n")
    status, _, err = await run_import(settings, capsys, export, "--map", "score=stars,customer.id=acct")
    assert status == 2
    assert "score=stars: no such column" in err and "'rating'" in err
    assert await stored(settings) == []


# --- bad rows ------------------------------------------------------------------------------


async def test_bad_rows_go_to_the_rejects_file_with_line_and_reason_and_the_rest_is_stored(settings, capsys, tmp_path):
    export = tmp_path / "mixed.csv"
    export.write_bytes(
        b"Response ID,Score,Comment,Email,Response timestamp\n"
        b"1,9,Good,ann@example.com,2024-01-01T00:00:00Z\n"
        b"2,85,Scale of 100,bo@example.com,2024-01-01T00:00:00Z\n"
        b"3,4.5,Half a point,cy@example.com,2024-01-01T00:00:00Z\n"
        b"4,,No score,dee@example.com,2024-01-01T00:00:00Z\n"
        b"5,7,Bad date,ed@example.com,next tuesday\n"
        b"6,7,No one,,2024-01-01T00:00:00Z\n"
        b"7,7,Bad email,not-an-email,2024-01-01T00:00:00Z\n"
        b"8,7,Too,many,fields,here\n"
        b"9,6,caf\xe9 latin-1,fay@example.com,2024-01-01T00:00:00Z\n"
        b'10,5,"A comment\nover two lines",gus@example.com,2024-01-01T00:00:00Z\n'
        b"11,0,Worst,hal@example.com,2024-01-01T00:00:00Z\n"
    )
    status, _, err = await run_import(settings, capsys, export, "--preset", "delighted")
    assert status == 1
    assert "3 stored, 0 already stored, 8 rejected" in err and "mixed.csv.rejected.jsonl" in err
    reasons = {r["line"]: r["reason"] for r in rejects_of(export)}
    assert set(reasons) == {3, 4, 5, 6, 7, 8, 9, 10}
    assert "85 is not on the 0-10 scale" in reasons[3]
    assert "'4.5' is not a whole number" in reasons[4]
    assert reasons[5] == "no score"
    assert "next tuesday" in reasons[6]
    assert "no customer id" in reasons[7]
    assert reasons[8].startswith("customer.email:")
    assert "6 fields" in reasons[9]
    assert "not valid UTF-8" in reasons[10]
    assert rejects_of(export)[0]["record"]["Score"] == "85"
    assert {r.external_id for r in await stored(settings)} == {"delighted:1", "delighted:10", "delighted:11"}


async def test_bad_json_lines_are_rejected_with_their_line(settings, capsys, tmp_path):
    export = write(
        tmp_path / "answers.jsonl",
        '{"s": 9, "c": "ann"}\n{"s": 9, "c": \n[1, 2]\n\n{"s": "11", "c": "bo"}\n{"s": 3, "c": "cy", "x": {"y": 1}}\n',
    )
    status, _, err = await run_import(settings, capsys, export, "--map", "score=s,customer.id=c,properties.x=x.y")
    assert status == 1, err
    reasons = {r["line"]: r["reason"] for r in rejects_of(export)}
    assert set(reasons) == {2, 3, 5}
    assert "not valid JSON" in reasons[2] and reasons[3] == "not a JSON object" and "11" in reasons[5]
    assert rejects_of(export)[0]["record"] == {"text": '{"s": 9, "c": '}  # the line as it was, to fix
    rows = await stored(settings)
    assert sorted((r.customer_id, r.properties) for r in rows) == [("ann", {}), ("cy", {"x": 1})]


# --- re-runs and dry runs -------------------------------------------------------------------


@pytest.mark.parametrize("with_ids", [True, False], ids=["file ids", "row hashes"])
async def test_importing_the_same_file_twice_stores_nothing_the_second_time(settings, capsys, tmp_path, with_ids):
    header = "Response ID,Score,Comment,Email\n" if with_ids else "Score,Comment,Email\n"
    rows = "".join((f"{n}," if with_ids else "") + f"{n % 11},Comment {n},p{n}@example.com\n" for n in range(1, 2501))
    export = write(tmp_path / "twice.csv", header + rows)
    first, _, err = await run_import(settings, capsys, export, "--preset", "delighted")
    assert first == 0 and "2,500 stored" in err
    second, _, err = await run_import(settings, capsys, export, "--preset", "delighted")
    assert second == 0 and "0 stored, 2,500 already stored" in err
    assert len(await stored(settings)) == 2500


async def test_a_dry_run_prints_what_would_be_stored_and_stores_nothing(settings, capsys, tmp_path):
    export = write(tmp_path / "dry.csv", "Response ID,Score,Comment,Email\n1,9,Nice,a@example.com\n2,2,Bad,b@x.io\n")
    status, out, err = await run_import(settings, capsys, export, "--preset", "delighted", "--dry-run")
    assert status == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert [p["line"] for p in printed] == [2, 3]
    assert printed[1]["response"] == {
        "score": 2,
        "comment": "Bad",
        "customer": {"id": "b@x.io", "email": "b@x.io"},
        "survey": {},
        "properties": {},
        "external_id": "delighted:2",
        "history": True,
    }
    assert "2 would be stored" in err and "nothing was written" in err
    assert await stored(settings) == []
    await run_import(settings, capsys, export, "--preset", "delighted")
    status, out, err = await run_import(settings, capsys, export, "--preset", "delighted", "--dry-run")
    assert out == "" and "0 would be stored, 2 already stored" in err


# --- follow-up of imported history -----------------------------------------------------------


async def test_old_history_opens_no_task_unless_follow_up_all_is_asked(settings, capsys, tmp_path, runtime, pump):
    old = datetime(2023, 1, 10, tzinfo=UTC).isoformat()
    export = write(tmp_path / "old.csv", f"Response ID,Score,Comment,Email,Created at\n1,2,Awful,a@example.com,{old}\n")
    await run_import(settings, capsys, export, "--preset", "delighted")
    await pump()
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 0
    again = write(
        tmp_path / "again.csv", f"Response ID,Score,Comment,Email,Created at\n2,2,Awful,b@example.com,{old}\n"
    )
    await run_import(settings, capsys, again, "--preset", "delighted", "--follow-up", "all")
    await pump()
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 1


# --- big files: read in a second process, stored in whole batches --------------------------


async def counted(settings) -> tuple[int, int]:
    db = Database(settings.resolved_database_url)
    try:
        async with db.sessions() as session:
            return (
                await session.scalar(select(func.count()).select_from(Response)),
                await session.scalar(select(func.count()).select_from(EventLogEntry)),
            )
    finally:
        await db.dispose()


def big_export(path: Path, rows: int, *, bad_every: int = 0) -> Path:
    lines = ["Response ID,Score,Comment,Email,Created at"]
    for n in range(1, rows + 1):
        score = "85" if bad_every and n % bad_every == 0 else str(n % 11)
        lines.append(f"{n},{score},Comment {n},p{n}@example.com,2023-0{1 + n % 9}-0{1 + n % 9}T10:00:00Z")
    return write(path, "\n".join(lines) + "\n")


@pytest.mark.parametrize("reader", ["thread", "process"])
async def test_a_file_of_many_batches_is_stored_rejected_and_merged_like_a_small_one(
    settings, capsys, tmp_path, reader
):
    export = big_export(tmp_path / "big.csv", 12_000, bad_every=1000)
    with export.open("a") as f:  # the score first, the comment in a later row of the same batch
        f.write("12001,3,,late@example.com,2023-02-02T10:00:00Z\n12001,3,Came later,late@example.com,\n")
    status, _, err = await run_import(settings, capsys, export, "--preset", "delighted", "--reader", reader)
    assert status == 1, err
    assert ("in a second process" in err) == (reader == "process")
    assert "12,002 rows" in err and "11,989 stored, 1 already stored, 12 rejected" in err
    assert [r["line"] for r in rejects_of(export)] == [n + 1 for n in range(1000, 12_001, 1000)]
    assert rejects_of(export)[0]["record"]["Score"] == "85"
    assert await counted(settings) == (11_989, 11_989)
    rows = {r.external_id: r for r in await stored(settings)}
    first, late = rows["delighted:1"], rows["delighted:12001"]
    assert (first.comment, first.history, first.responded_at.month) == ("Comment 1", True, 2)
    assert late.comment == "Came later"
    db = Database(settings.resolved_database_url)
    try:
        async with db.sessions() as session:
            envelopes = (await session.scalars(select(EventLogEntry.envelope))).all()
    finally:
        await db.dispose()
    data = {e["data"]["external_id"]: e["data"] for e in map(json.loads, envelopes)}
    assert data["delighted:1"]["id"] == first.id and data["delighted:1"]["history"] is True
    assert data["delighted:12001"]["comment"] == "Came later"
    # The event says what the row says, whichever process drafted it.
    assert {k: data["delighted:1"][k] for k in ("score", "responded_at", "customer")} == {
        "score": 1,
        "responded_at": "2023-02-02T10:00:00+00:00",
        "customer": {"id": "p1@example.com", "email": "p1@example.com"},
    }
    status, _, err = await run_import(settings, capsys, export, "--preset", "delighted", "--reader", reader)
    assert "0 stored, 11,990 already stored, 12 rejected" in err


async def test_a_file_of_a_megabyte_or_more_is_read_in_a_second_process_unless_told_otherwise(
    settings, capsys, tmp_path, monkeypatch
):
    from npsloop.services.ingest import import_process

    export = big_export(tmp_path / "export.csv", 3000)
    monkeypatch.setattr(import_process, "MIN_BYTES", export.stat().st_size)
    monkeypatch.setattr(sys.modules[__name__], "READING", "by size")  # this test says which
    status, _, err = await run_import(settings, capsys, export, "--preset", "delighted")
    assert status == 0 and "in a second process" in err and "3,000 stored" in err
    again = export.with_name("again.csv")
    again.write_bytes(export.read_bytes()[:-1])  # one byte under the threshold
    status, _, err = await run_import(settings, capsys, again, "--preset", "delighted")
    assert status == 0 and "in a second process" not in err and "3,000 already stored" in err


async def test_a_second_reading_process_is_for_local_imports_only(settings, capsys, tmp_path):
    export = big_export(tmp_path / "export.csv", 10)
    status, _, err = await run_import(
        settings, capsys, export, "--preset", "delighted", "--dry-run", "--reader", "process"
    )
    assert status == 2 and "--reader process is for an import into this installation's database" in err
    assert await counted(settings) == (0, 0)


@pytest.mark.parametrize("reader", ["thread", "process"])
async def test_a_crash_mid_import_leaves_whole_batches_and_a_re_run_stores_the_rest_once(
    settings, capsys, tmp_path, monkeypatch, reader
):
    from npsloop.services.ingest import import_run, service

    export = big_export(tmp_path / "crash.csv", 5000)
    monkeypatch.setattr(import_run, "BATCH_SIZE", 1000)
    written = 0
    real_write = service.write

    async def write_then_crash(*args, **kwargs):
        nonlocal written
        await real_write(*args, **kwargs)
        written += 1
        if written == 3:
            # On SQLite the third batch's rows and events are in its open transaction and go
            # with it; on PostgreSQL they were one statement, committed on its own.
            raise RuntimeError("power cut")

    monkeypatch.setattr(service, "write", write_then_crash)
    with pytest.raises(RuntimeError, match="power cut"):
        await run_import(settings, capsys, export, "--preset", "delighted", "--reader", reader)
    rows, events = await counted(settings)
    # Batches 1 and 2, and on PostgreSQL 3; the next one may have been under way already.
    assert rows == events and rows % 1000 == 0 and 2000 <= rows <= 4000
    if settings.is_sqlite:
        assert "delighted:2001" not in {r.external_id for r in await stored(settings)}
    monkeypatch.setattr(service, "write", real_write)
    status, _, err = await run_import(settings, capsys, export, "--preset", "delighted")
    assert status == 0 and f"{5000 - rows:,} stored, {rows:,} already stored" in err
    assert await counted(settings) == (5000, 5000)
    assert len({r.external_id for r in await stored(settings)}) == 5000


# --- through a running server's batch endpoint ------------------------------------------------


async def test_with_url_rows_go_through_the_servers_batch_endpoint(
    settings, capsys, tmp_path, runtime, client, make_key
):
    from npsloop.services.ingest.import_run import RejectsFile, RemoteStore
    from npsloop.services.ingest.import_run import run_import as run
    from npsloop.services.ingest.importing import RecordSource, build_mapper, preset_named

    headers = await make_key("responses:write", name="history-import")
    client.headers.update(headers)
    export = write(
        tmp_path / "remote.csv",
        "Response ID,Score,Comment,Email\n" + "".join(f"{n},{n % 11},C{n},p{n}@example.com\n" for n in range(1200)),
    )
    for expected in ((1200, 0), (0, 1200)):
        source = RecordSource(export, preset=preset_named("delighted"))
        mapper = build_mapper(
            source, preset=preset_named("delighted"), mapping={}, constants={}, zone=UTC, history=True
        )
        rejects = RejectsFile(tmp_path / "r.jsonl", source.headers)
        counts = await run(source, mapper, RemoteStore(client), rejects=rejects)
        rejects.close()
        source.close()
        assert (counts.stored, counts.duplicates, counts.rejected) == (*expected, 0)
    rows = await stored(settings)
    assert len(rows) == 1200 and {r.source for r in rows} == {"history-import"}


# --- progress ---------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_count_rate_and_eta_in_place_on_a_terminal_and_as_lines_elsewhere():
    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = Progress(stream, total_bytes=1000, every=0)
        progress.update(250, 250)
        progress.update(1000, 1000, final=True)
    assert terminal.getvalue().startswith("\r[######") and "250 rows" in terminal.getvalue()
    assert "ETA 0:00:" in terminal.getvalue() and "rows/s" in terminal.getvalue()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in log.getvalue() and " 25%" in lines[0] and "100%" in lines[1]
