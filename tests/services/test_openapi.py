"""/openapi.json is valid OpenAPI 3.1 and lists every error the API answers, as a Problem.

The answers are real: each error below is provoked through the app and its status must be
documented on that operation, with RFC 9110's reason phrase as the problem's title.
"""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from npsloop.shared import problems
from npsloop.shared.problems import PROBLEM_JSON, PROBLEM_SCHEMA, TITLES
from tests.support.receivers import HttpReceiver

UNKNOWN = "no-such-id"
# A valid body for each operation that takes one, so an unknown id is what fails.
BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/v1/responses"): {"score": 5, "customer": {"id": "c"}},
    ("POST", "/v1/responses/batch"): {"responses": [{"score": 5, "customer": {"id": "c"}}]},
    ("PATCH", "/v1/responses/{response_id}"): {"comment": "Arrived later"},
    ("PUT", "/v1/responses/{response_id}/classification"): {"sentiment": "negative"},
    ("POST", "/v1/tasks/{task_id}/acknowledge"): {},
    ("POST", "/v1/tasks/{task_id}/notes"): {"note": "Called"},
    ("POST", "/v1/tasks/{task_id}/resolve"): {"outcome": "contacted"},
    ("POST", "/v1/tasks/{task_id}/reassign"): {"assignee": "kim"},
    ("POST", "/v1/webhooks"): {"url": "http://127.0.0.1:9/hook", "events": ["*"]},
    ("POST", "/v1/surveys/sent"): {"customer_id": "c"},
    ("POST", "/v1/outcomes"): {"customer_id": "c", "outcome": "renewed"},
}
# Answers before it reads the body when the policy has no integrations.formbricks (404): its
# own tests (tests/services/integrations) cover its answers with the integration on.
OFF_WITHOUT_POLICY = {("POST", "/v1/integrations/formbricks")}


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", UNKNOWN, path)


class Answers:
    """Every error answer seen, checked against the document as it arrives."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.seen: set[tuple[str, str, int]] = set()
        self.problem = Draft202012Validator(PROBLEM_SCHEMA)

    def check(self, method: str, path: str, reply, expected: int) -> None:
        assert reply.status_code == expected, (method, path, reply.status_code, reply.text)
        documented = self.document["paths"][path][method.lower()]["responses"]
        assert str(expected) in documented, f"{method} {path} answers {expected} but does not document it"
        assert documented[str(expected)]["content"] == {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
        assert reply.headers["content-type"] == PROBLEM_JSON
        body = reply.json()
        assert list(self.problem.iter_errors(body)) == []
        assert (body["status"], body["title"]) == (expected, TITLES[expected])
        self.seen.add((method, path, expected))


@pytest.fixture
async def document(client) -> dict:
    return (await client.get("/openapi.json")).json()


async def test_the_document_is_valid_openapi_3_1_and_every_error_is_a_problem(document):
    validate(document)  # openapi-spec-validator, against the OpenAPI 3.1 specification's schema
    assert document["openapi"].startswith("3.1")
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert response["content"] == {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (
                    method,
                    path,
                    status,
                )
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_problem_titles_are_rfc_9110_reason_phrases():
    assert (TITLES[413], TITLES[422], TITLES[415]) == (
        "Content Too Large",
        "Unprocessable Content",
        "Unsupported Media Type",
    )
    for kind in (problems.BadRequest, problems.NotFound, problems.Conflict, problems.ContentTooLarge):
        assert kind.title == TITLES[kind.status]
    assert problems.title_for(405) == "Method Not Allowed"


async def test_every_error_the_api_answers_is_documented_on_its_operation(document, client, runtime, make_key, pump):
    admin = await make_key("admin")
    answers = Answers(document)
    ops = operations(document)
    too_large = b"[" + b" " * runtime.settings.max_body_bytes + b"]"

    for method, path, operation in ops:
        if operation.get("security"):
            answers.check(method, path, await client.request(method, concrete(path)), 401)
        if any(p["in"] == "path" for p in operation.get("parameters", ())):
            body = BODIES.get((method, path)) if "requestBody" in operation else None
            assert "requestBody" not in operation or body is not None, f"add a valid body for {method} {path}"
            reply = await client.request(method, concrete(path), json=body, headers=admin)
            if reply.status_code < 300:  # idempotent on an unknown id (erasing a customer): a documented success
                assert str(reply.status_code) in operation["responses"] and "404" not in operation["responses"]
            else:
                answers.check(method, path, reply, 404)
        if (method, path) in OFF_WITHOUT_POLICY:
            answers.check(method, path, await client.request(method, path, json={}, headers=admin), 404)
            continue
        if "requestBody" in operation:
            assert (method, path) in BODIES, f"add a valid body for {method} {path}"
            json_headers = {**admin, "content-type": "application/json"}
            malformed = await client.request(method, concrete(path), content=b'{"score": ', headers=json_headers)
            answers.check(method, path, malformed, 400)
            oversized = await client.request(method, concrete(path), content=too_large, headers=json_headers)
            answers.check(method, path, oversized, 413)

    # The answers particular to one operation.
    answers.check("GET", "/v1/tasks", await client.get("/v1/tasks?cursor=not-ours", headers=admin), 400)
    answers.check("GET", "/v1/deliveries", await client.get("/v1/deliveries?channel=nope", headers=admin), 404)
    first = await client.post(
        "/v1/responses", json={"score": 2, "customer": {"id": "c"}}, headers={**admin, "Idempotency-Key": "k-1"}
    )
    assert first.status_code == 202
    reused = await client.post(
        "/v1/responses", json={"score": 3, "customer": {"id": "c"}}, headers={**admin, "Idempotency-Key": "k-1"}
    )
    answers.check("POST", "/v1/responses", reused, 409)

    receiver = HttpReceiver()
    try:
        hooked = await client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=admin)
        assert hooked.status_code == 201, hooked.text
        await client.post("/v1/responses", json={"score": 1, "customer": {"id": "d"}}, headers=admin)
        await pump()
        deliveries = (await client.get(f"/v1/webhooks/{hooked.json()['id']}/deliveries", headers=admin)).json()
        pending = deliveries["deliveries"][0]["id"]
        path = "/v1/deliveries/{delivery_id}/redeliver"
        answers.check("POST", path, await client.post(f"/v1/deliveries/{pending}/redeliver", headers=admin), 409)
    finally:
        receiver.close()

    task = (await client.get("/v1/tasks", params={"customer_id": "d"}, headers=admin)).json()["tasks"][0]
    resolved = await client.post(f"/v1/tasks/{task['id']}/resolve", json={"outcome": "contacted"}, headers=admin)
    assert resolved.status_code == 200
    for action, body in (("acknowledge", {}), ("resolve", {"outcome": "churned"}), ("reassign", {"assignee": "kim"})):
        reply = await client.post(f"/v1/tasks/{task['id']}/{action}", json=body, headers=admin)
        answers.check("POST", f"/v1/tasks/{{task_id}}/{action}", reply, 409)

    not_found = [(m, p) for m, p, o in ops if "404" in o["responses"]]
    assert len(not_found) >= 13 and all((m, p, 404) in answers.seen for m, p in not_found)
