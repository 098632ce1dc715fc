"""POST/GET/PATCH /v1/responses on both databases, through the real ASGI app."""

from __future__ import annotations

from sqlalchemy import func, select

from npsloop.services.ingest.models import Response
from npsloop.shared.events import CloudEvent
from npsloop.shared.models import EventLogEntry

DETRACTOR = {
    "score": 3,
    "comment": "Support never answered my ticket",
    "customer": {"id": "cust-1", "segment": "smb"},
    "survey": {"touchpoint": "support", "kind": "transactional", "channel": "email"},
    "properties": {"plan": "pro"},
}


async def _count(runtime, model) -> int:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_a_valid_response_is_accepted_stored_and_announced_in_one_go(client, runtime, make_key):
    headers = await make_key("responses:write", "responses:read")
    reply = await client.post("/v1/responses", json=DETRACTOR, headers=headers)
    assert reply.status_code == 202
    body = reply.json()
    assert body["status"] == "accepted" and body["duplicate"] is False
    assert await _count(runtime, Response) == 1
    async with runtime.db.sessions() as session:
        entry = await session.scalar(select(EventLogEntry))
    assert entry.type == "npsloop.response.received.v1" and entry.key == "cust-1"


async def test_a_repeated_idempotency_key_returns_the_first_id_and_creates_nothing(client, runtime, make_key):
    headers = {**await make_key("responses:write"), "Idempotency-Key": "req-42"}
    first = await client.post("/v1/responses", json=DETRACTOR, headers=headers)
    again = await client.post("/v1/responses", json=DETRACTOR, headers=headers)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"] and again.json()["duplicate"]
    assert await _count(runtime, Response) == 1 and await _count(runtime, EventLogEntry) == 1


async def test_an_idempotency_key_reused_for_another_body_is_a_conflict(client, runtime, make_key):
    headers = {**await make_key("responses:write"), "Idempotency-Key": "req-43"}
    await client.post("/v1/responses", json=DETRACTOR, headers=headers)
    reply = await client.post("/v1/responses", json={**DETRACTOR, "score": 9}, headers=headers)
    assert reply.status_code == 409 and reply.headers["content-type"] == "application/problem+json"
    assert await _count(runtime, Response) == 1


async def test_a_repeated_external_id_is_one_response_and_a_late_comment_is_added(client, runtime, make_key):
    headers = await make_key("responses:write", "responses:read")
    score_only = {"score": 2, "customer": {"id": "cust-2"}, "external_id": "survey-7"}
    first = await client.post("/v1/responses", json=score_only, headers=headers)
    again = await client.post("/v1/responses", json={**score_only, "comment": "Too expensive"}, headers=headers)
    assert again.json()["id"] == first.json()["id"]
    stored = (await client.get(f"/v1/responses/{first.json()['id']}", headers=headers)).json()
    assert stored["comment"] == "Too expensive"
    async with runtime.db.sessions() as session:
        types = (await session.scalars(select(EventLogEntry.type).order_by(EventLogEntry.position))).all()
    assert types == ["npsloop.response.received.v1", "npsloop.response.updated.v1"]


async def test_a_late_comment_by_patch_reclassifies_the_response(client, runtime, make_key, pump):
    headers = await make_key("responses:write", "responses:read")
    rid = (await client.post("/v1/responses", json={"score": 4, "customer": {"id": "c"}}, headers=headers)).json()["id"]
    await pump()
    before = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
    assert before["category"] == "detractor" and before["themes"] == []
    reply = await client.patch(
        f"/v1/responses/{rid}", json={"comment": "The price is far too high for what it does"}, headers=headers
    )
    assert reply.status_code == 202
    await pump()
    after = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
    assert after["comment"].startswith("The price")
    assert "pricing" in [t["id"] for t in after["themes"]]
    assert after["classified_at"] >= before["classified_at"]


async def test_patching_an_unknown_response_is_404_problem(client, make_key):
    headers = await make_key("responses:write")
    reply = await client.patch("/v1/responses/nope", json={"comment": "x"}, headers=headers)
    assert reply.status_code == 404 and reply.json()["status"] == 404


async def test_bad_input_names_the_field_and_stores_nothing(client, runtime, make_key):
    headers = await make_key("responses:write")
    cases = [
        ({**DETRACTOR, "score": 11}, "score"),
        ({**DETRACTOR, "score": "7"}, "score"),
        ({"score": 5, "customer": {}}, "customer.id"),
        ({"score": 5}, "customer"),
        ({**DETRACTOR, "lifecycle_stage": "veteran"}, "lifecycle_stage"),
        ({**DETRACTOR, "survey": {"channel": "fax"}}, "survey.channel"),
        ({**DETRACTOR, "responded_at": "2026-01-01T10:00:00"}, "responded_at"),
        ({**DETRACTOR, "scroe": 5}, "scroe"),
    ]
    for body, field in cases:
        reply = await client.post("/v1/responses", json=body, headers=headers)
        assert reply.status_code == 422, body
        assert reply.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in reply.json()["errors"]], reply.json()
    assert await _count(runtime, Response) == 0 and await _count(runtime, EventLogEntry) == 0


async def test_malformed_json_is_400_and_oversized_bodies_are_413(client, make_key):
    headers = {**await make_key("responses:write"), "content-type": "application/json"}
    reply = await client.post("/v1/responses", content=b'{"score": 3,', headers=headers)
    assert reply.status_code == 400 and reply.json()["title"] == "Bad Request"
    huge = b'{"score": 3, "customer": {"id": "c"}, "comment": "' + b"x" * 1_100_000 + b'"}'
    reply = await client.post("/v1/responses", content=huge, headers=headers)
    assert reply.status_code == 413 and reply.headers["content-type"] == "application/problem+json"


async def test_missing_or_wrong_keys_are_401_and_missing_scopes_403(client, runtime, make_key):
    assert (await client.post("/v1/responses", json=DETRACTOR)).status_code == 401
    wrong = await client.post("/v1/responses", json=DETRACTOR, headers={"Authorization": "Bearer nps_abc_def"})
    assert wrong.status_code == 401 and wrong.json()["title"] == "Unauthorized"
    reader = await make_key("responses:read")
    forbidden = await client.post("/v1/responses", json=DETRACTOR, headers=reader)
    assert forbidden.status_code == 403 and "responses:write" in forbidden.json()["detail"]
    assert await _count(runtime, Response) == 0


async def test_a_revoked_key_is_refused_at_once(client, runtime, make_key):
    from npsloop.shared import auth

    headers = await make_key("responses:write")
    assert (await client.post("/v1/responses", json=DETRACTOR, headers=headers)).status_code == 202
    async with runtime.db.unit_of_work() as session:
        (key,) = await auth.list_keys(session)
        await auth.revoke_key(session, key.id, clock=runtime.clock)
    assert (await client.post("/v1/responses", json=DETRACTOR, headers=headers)).status_code == 401


async def test_a_batch_reports_each_item_and_stores_the_valid_ones(client, runtime, make_key):
    headers = await make_key("responses:write")
    items = [
        {"score": 9, "customer": {"id": "a"}, "external_id": "e1"},
        {"score": 12, "customer": {"id": "b"}},
        {"score": 0, "customer": {"id": "c"}, "external_id": "e1"},
        {"score": 7, "customer": {"id": "d"}},
    ]
    reply = await client.post("/v1/responses/batch", json={"responses": items}, headers=headers)
    assert reply.status_code == 202
    body = reply.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 1)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "rejected", "duplicate", "accepted"]
    assert body["results"][1]["errors"][0]["field"] == "score"
    assert body["results"][2]["id"] == body["results"][0]["id"]
    assert await _count(runtime, Response) == 2


async def test_a_comment_arriving_later_in_the_same_batch_is_in_the_row_and_its_event(client, runtime, make_key):
    # Rows and events are drafted before the transaction; a comment merged in afterwards
    # must reach both the stored row and the response.received event.
    headers = await make_key("responses:write", "responses:read")
    items = [
        {"score": 3, "customer": {"id": "a"}, "external_id": "s-1"},
        {"score": 3, "customer": {"id": "a"}, "external_id": "s-1", "comment": "Invoices are always wrong"},
        {"score": 8, "customer": {"id": "b"}, "comment": "Fine"},
    ]
    body = (await client.post("/v1/responses/batch", json={"responses": items}, headers=headers)).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate", "accepted"]
    response_id = body["results"][0]["id"]
    stored = (await client.get(f"/v1/responses/{response_id}", headers=headers)).json()
    assert stored["comment"] == "Invoices are always wrong"
    async with runtime.db.sessions() as session:
        envelopes = (await session.scalars(select(EventLogEntry.envelope).order_by(EventLogEntry.position))).all()
    events = [CloudEvent.from_json(envelope) for envelope in envelopes]
    assert [(e.type, e.data["id"], e.data["comment"]) for e in events] == [
        ("npsloop.response.received.v1", response_id, "Invoices are always wrong"),
        ("npsloop.response.received.v1", body["results"][2]["id"], "Fine"),
    ]


async def test_a_batch_over_1000_items_is_refused_whole(client, runtime, make_key):
    headers = await make_key("responses:write")
    items = [{"score": 5, "customer": {"id": str(i)}} for i in range(1001)]
    reply = await client.post("/v1/responses/batch", json={"responses": items}, headers=headers)
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "responses"
    assert await _count(runtime, Response) == 0


async def test_get_shows_the_classification_once_classified(client, make_key, pump):
    headers = await make_key("responses:write", "responses:read")
    rid = (
        await client.post(
            "/v1/responses", json={**DETRACTOR, "score": 10, "comment": "Great support team"}, headers=headers
        )
    ).json()["id"]
    pending = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
    assert pending["category"] is None and pending["classified_at"] is None
    await pump()
    done = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
    assert done["category"] == "promoter" and done["sentiment"] == "positive"
    assert done["classifier_version"] and done["classified_at"]
    assert (await client.get("/v1/responses/unknown", headers=headers)).status_code == 404


async def test_health_ready_and_openapi_answer(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "bus": "ok"}
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/responses" in spec["paths"] and "/v1/tasks/{task_id}/resolve" in spec["paths"]


async def test_openapi_documents_the_bearer_key_and_problem_errors_the_api_really_answers(client, make_key):
    headers = await make_key("responses:write")
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["apiKey"]["description"],
    }
    post = spec["paths"]["/v1/responses"]["post"]
    assert post["security"] == [{"apiKey": ["responses:write"]}]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert {status: post["responses"][status]["content"] for status in ("401", "403", "422", "429")} == dict.fromkeys(
        ("401", "403", "422", "429"), problem
    )
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    unguarded = [
        (path, method)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
        if not op.get("security")
    ]
    # Formbricks cannot send an API key; its webhook is verified by its Standard Webhooks signature.
    assert unguarded == [("/v1/integrations/formbricks", "post")]
    # The documented shapes are the real ones: a 422 and a 401 carry the Problem's required fields.
    schema = spec["components"]["schemas"]["Problem"]
    bad = await client.post("/v1/responses", json={"score": 11, "customer": {"id": "c"}}, headers=headers)
    anonymous = await client.get("/v1/tasks")
    for reply in (bad, anonymous):
        assert reply.headers["content-type"] == "application/problem+json"
        assert set(schema["required"]) <= set(reply.json())
    assert all(set(e) >= set(schema["properties"]["errors"]["items"]["required"]) for e in bad.json()["errors"])
