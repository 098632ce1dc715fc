"""A body that is not declared JSON gets 415 naming application/json, on every write path."""

from __future__ import annotations

import pytest

FORMS = [
    ({"content-type": "text/plain"}, b'{"score": 3, "customer": {"id": "c1"}}', "text/plain"),
    (
        {"content-type": "application/x-www-form-urlencoded"},
        b"score=3&customer.id=c1",
        "application/x-www-form-urlencoded",
    ),
    ({"content-type": "multipart/form-data; boundary=x"}, b"--x\r\n\r\n3\r\n--x--\r\n", "multipart/form-data"),
    ({}, b'{"score": 3, "customer": {"id": "c1"}}', "none"),
]
WRITES = [
    ("POST", "/v1/responses"),
    ("POST", "/v1/responses/batch"),
    ("PATCH", "/v1/responses/r-1"),
    ("PUT", "/v1/responses/r-1/classification"),
    ("POST", "/v1/tasks/t-1/notes"),
    ("POST", "/v1/webhooks"),
    ("POST", "/v1/outcomes"),
]


@pytest.mark.parametrize("method, path", WRITES)
@pytest.mark.parametrize("headers, body, named", FORMS)
async def test_a_body_not_declared_json_is_answered_415_naming_application_json(
    client, make_key, method, path, headers, body, named
):
    reply = await client.request(method, path, content=body, headers={**await make_key("admin"), **headers})
    assert reply.status_code == 415, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert "application/json" in problem["detail"] and repr(named) in problem["detail"], problem
    assert problem["errors"] == [{"field": "content-type", "message": "expected application/json"}]


async def test_json_with_a_charset_or_a_json_suffix_and_bodiless_posts_are_still_taken(client, make_key, pump):
    headers = await make_key("admin")
    body = b'{"score": 2, "comment": "slow", "customer": {"id": "c-ct"}}'
    for content_type in ("application/json; charset=utf-8", "application/problem+json", "APPLICATION/JSON"):
        reply = await client.post("/v1/responses", content=body, headers={**headers, "content-type": content_type})
        assert reply.status_code == 202, (content_type, reply.text)
    await pump()
    task = (await client.get("/v1/tasks", headers=headers)).json()["tasks"][0]
    assert (await client.post(f"/v1/tasks/{task['id']}/acknowledge", headers=headers)).status_code == 200


async def test_the_openapi_document_lists_415_where_a_body_is_taken(client):
    spec = (await client.get("/openapi.json")).json()
    assert "415" in spec["paths"]["/v1/responses"]["post"]["responses"]
    assert "415" not in spec["paths"]["/v1/tasks"]["get"]["responses"]
