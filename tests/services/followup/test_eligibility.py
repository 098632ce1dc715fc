"""Survey eligibility tells when a customer last answered: a read, so it needs a read scope."""

from __future__ import annotations

import pytest

URL = "/v1/surveys/eligibility"


@pytest.mark.parametrize("scopes", [("surveys:read",), ("responses:read",), ("admin",)])
async def test_eligibility_answers_keys_that_may_read(client, make_key, pump, scopes):
    writer = await make_key("responses:write")
    assert (
        await client.post("/v1/responses", json={"score": 9, "customer": {"id": "c-el"}}, headers=writer)
    ).status_code == 202
    await pump()
    reply = await client.get(URL, params={"customer_id": "c-el"}, headers=await make_key(*scopes))
    assert reply.status_code == 200, reply.text
    assert reply.json()["eligible"] is False and reply.json()["last_response_at"] is not None


async def test_a_key_that_may_only_write_responses_cannot_learn_when_a_customer_answered(client, make_key, pump):
    writer = await make_key("responses:write")
    await client.post("/v1/responses", json={"score": 9, "customer": {"id": "c-el"}}, headers=writer)
    await pump()
    for scopes in (("responses:write",), ("tasks:write", "analytics:read")):
        reply = await client.get(URL, params={"customer_id": "c-el"}, headers=await make_key(*scopes))
        assert reply.status_code == 403, reply.text
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert "surveys:read" in reply.json()["detail"] and "last_response_at" not in reply.text


async def test_the_openapi_document_names_either_scope_for_eligibility(client):
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"][URL]["get"]
    assert operation["security"] == [{"apiKey": ["surveys:read"]}, {"apiKey": ["responses:read"]}]
    assert "403" in operation["responses"]
    outcomes = spec["paths"]["/v1/outcomes"]["get"]["security"]
    assert outcomes == [{"apiKey": ["analytics:read"]}, {"apiKey": ["tasks:read"]}]  # every any-of check
