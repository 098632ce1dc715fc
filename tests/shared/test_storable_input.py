"""Text a database cannot store (NUL) and numbers JSON cannot carry (Infinity, NaN, 1e400)
get a 422 naming the field on both databases, through every kind of input: body, query,
path, batch item. Nothing is stored for them, and a repeat never turns into a 500."""

from __future__ import annotations

import json

import pytest

from npsloop.shared.storable_input import problem_in_body
from tests.factories import response_body

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"comment": "bad\x00comment"}, "comment"),
        ({"external_id": "ext\x00id"}, "external_id"),
        ({"customer": {"id": "c\x00x"}}, "customer.id"),
        ({"customer": {"id": "c1", "email": "a\x00@b.example"}}, "customer.email"),
        ({"properties": {"plan\x00": "pro"}}, "properties"),
        ({"properties": {"plan": "pro\x00"}}, "properties.plan"),
    ],
)
async def test_a_nul_anywhere_in_a_response_is_refused_naming_the_field(client, make_key, fields, field):
    headers = {**await make_key("admin"), **JSON}
    for _ in range(2):  # the repeat (same external id) must not reach the unique index either
        document = response_body(3, "c-nul") | fields  # the field under test replaces the default
        reply = await client.post("/v1/responses", content=json.dumps(document).encode(), headers=headers)
        assert reply.status_code == 422, reply.text
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in reply.json()["errors"]] == [field], reply.text
    listed = await client.get("/v1/tasks", headers=headers)
    assert listed.status_code == 200
    exported = await client.get("/v1/analytics/export/responses.csv", headers=headers)
    assert exported.status_code == 200 and exported.text.count("\n") <= 1, exported.text


@pytest.mark.parametrize(
    "raw, field",
    [
        (b'{"score": 3, "customer": {"id": "c1"}, "properties": {"a": Infinity}}', "properties.a"),
        (b'{"score": 3, "customer": {"id": "c1"}, "properties": {"a": -Infinity}}', "properties.a"),
        (b'{"score": 3, "customer": {"id": "c1"}, "properties": {"a": NaN}}', "properties.a"),
        (b'{"score": 3, "customer": {"id": "c1"}, "properties": {"a": 1e400}}', "properties.a"),
    ],
)
async def test_non_finite_numbers_are_refused_naming_the_field(client, make_key, raw, field):
    headers = {**await make_key("admin"), **JSON}
    reply = await client.post("/v1/responses", content=raw, headers=headers)
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == [field], reply.text


async def test_finite_large_numbers_and_escaped_backslashes_are_still_taken(client, make_key):
    headers = {**await make_key("admin"), **JSON}
    raw = b'{"score": 9, "customer": {"id": "c1"}, "comment": "a \\\\u0000 literal", "properties": {"a": 1e300}}'
    reply = await client.post("/v1/responses", content=raw, headers=headers)
    assert reply.status_code == 202, reply.text
    stored = await client.get(f"/v1/responses/{reply.json()['id']}", headers=headers)
    assert stored.json()["comment"] == "a \\u0000 literal"
    assert stored.json()["properties"] == {"a": 1e300}


async def test_one_nul_item_in_a_batch_is_rejected_alone(client, make_key):
    headers = {**await make_key("admin"), **JSON}
    items = [{"score": 2, "customer": {"id": f"c{i}"}, "external_id": f"e{i}"} for i in range(3)]
    items[1]["comment"] = "nul\x00here"
    items[2]["properties"] = {"x": 1}
    raw = json.dumps({"responses": items}).encode().replace(b'{"x": 1}', b'{"x": NaN}')
    for _ in range(2):  # an importer that retries gets through the good items, once
        reply = await client.post("/v1/responses/batch", content=raw, headers=headers)
        assert reply.status_code == 202, reply.text
        results = reply.json()["results"]
        assert [r["status"] for r in results][1:] == ["rejected", "rejected"], results
        assert results[0]["status"] in ("accepted", "duplicate")
        assert "comment" in json.dumps(results[1]["errors"])
        assert "properties" in json.dumps(results[2]["errors"])


@pytest.mark.parametrize(
    "method, path, params",
    [
        ("GET", "/v1/tasks", {"customer_id": "a\x00b"}),
        ("GET", "/v1/surveys/eligibility", {"customer_id": "a\x00b"}),
        ("GET", "/v1/nps", {"segment": "x\x00"}),
    ],
)
async def test_a_nul_in_a_query_parameter_is_refused_naming_it(client, make_key, method, path, params):
    reply = await client.request(method, path, params=params, headers=await make_key("admin"))
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"][0]["field"] == f"query.{next(iter(params))}"


@pytest.mark.parametrize(
    "method, path",
    [
        ("DELETE", "/v1/customers/a%00b"),
        ("GET", "/v1/responses/r%00"),
        ("GET", "/v1/tasks/t%00"),
    ],
)
async def test_a_nul_in_the_path_is_refused(client, make_key, method, path):
    reply = await client.request(method, path, headers=await make_key("admin"))
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"][0]["field"] == "path"


WRITES = [
    ("PATCH", "/v1/responses/{response_id}", b'{"comment": "late\\u0000comment"}', "comment"),
    ("PUT", "/v1/responses/{response_id}/classification", b'{"themes": ["pricing\\u0000"]}', "themes.0"),
    ("POST", "/v1/tasks/{task_id}/notes", b'{"note": "called\\u0000back"}', "note"),
    ("POST", "/v1/tasks/{task_id}/acknowledge", b'{"note": "x\\u0000"}', "note"),
    ("POST", "/v1/tasks/{task_id}/resolve", b'{"outcome": "resolved", "note": "x\\u0000"}', "note"),
    ("POST", "/v1/tasks/{task_id}/reassign", b'{"assignee": "kim\\u0000"}', "assignee"),
    ("POST", "/v1/surveys/sent", b'{"customer_id": "c\\u0000", "channel": "email"}', "customer_id"),
    ("POST", "/v1/outcomes", b'{"customer_id": "c-nul", "outcome": "renewed", "revenue": Infinity}', "revenue"),
    ("POST", "/v1/outcomes", b'{"customer_id": "c-nul", "outcome": "renewed", "revenue": 1e400}', "revenue"),
    (
        "POST",
        "/v1/webhooks",
        b'{"url": "https://example.com/h", "events": ["*"], "description": "\\u0000"}',
        "description",
    ),
]


@pytest.mark.parametrize("method, path, raw, field", WRITES)
async def test_every_write_path_refuses_a_nul_or_a_non_finite_number_naming_the_field(
    client, make_key, pump, method, path, raw, field
):
    headers = {**await make_key("admin"), **JSON}
    posted = await client.post(
        "/v1/responses", content=json.dumps(response_body(3, "c-nul", "slow")).encode(), headers=headers
    )
    await pump()
    (task,) = (await client.get("/v1/tasks", headers=headers)).json()["tasks"]
    target = path.format(response_id=posted.json()["id"], task_id=task["id"])
    before = (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json()

    reply = await client.request(method, target, content=raw, headers=headers)
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == [field], reply.text
    assert (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json() == before  # nothing written
    assert (await client.get(f"/v1/responses/{posted.json()['id']}", headers=headers)).json()["comment"] == "slow"


def test_the_body_check_finds_only_real_nuls_and_non_finite_numbers():
    assert problem_in_body(b'{"a": "\\u0000"}') == ("a", "must not contain the NUL character (\\u0000)")
    assert problem_in_body(b'{"a": "\\\\u0000"}') is None  # an escaped backslash, then text
    assert problem_in_body(b'{"a": [1, {"b": 1E+999}]}')[0] == "a.1.b"
    assert problem_in_body(b'{"a": 1e308}') is None
    assert problem_in_body(b'{"a": "NaN"}') is None  # a string, not a number
    assert problem_in_body(b"not json NaN") is None  # the route answers 400 for that
