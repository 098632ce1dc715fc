"""GET /v1/customers/{id}: the whole story a customer-success lead reads before calling,
built from real rows through the real pipeline on both databases."""

from __future__ import annotations

CUSTOMER = {"id": "cust-story-1", "email": "Rita.Story@Example.org", "name": "Rita Story", "account_id": "acct-7"}


async def _answer(client, headers, score, comment, **customer):
    reply = await client.post(
        "/v1/responses",
        json={
            "score": score,
            "comment": comment,
            "customer": {**CUSTOMER, **customer},
            "survey": {"touchpoint": "support"},
        },
        headers=headers,
    )
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


async def test_the_story_has_every_answer_task_outcome_and_eligibility(client, make_key, pump, clock):
    admin = await make_key("admin")
    first = await _answer(client, admin, 2, "Support never called me back about the invoice")
    await pump()
    (task,) = (await client.get("/v1/tasks", params={"customer_id": CUSTOMER["id"]}, headers=admin)).json()["tasks"]
    resolved = await client.post(f"/v1/tasks/{task['id']}/resolve", json={"outcome": "resolved"}, headers=admin)
    assert resolved.status_code == 200, resolved.text
    clock.advance(days=30)
    second = await _answer(client, admin, 9, "Much better since the call", name="Rita S.")
    await pump()
    outcome = await client.post(
        "/v1/outcomes", json={"customer_id": CUSTOMER["id"], "outcome": "renewed", "revenue": 1200.0}, headers=admin
    )
    assert outcome.status_code == 201, outcome.text

    reply = await client.get(f"/v1/customers/{CUSTOMER['id']}", headers=await make_key("responses:read"))
    assert reply.status_code == 200, reply.text
    story = reply.json()
    assert story["customer"]["name"] == "Rita S."  # the newest identity
    assert story["account_id"] == "acct-7"
    assert story["category"] == "promoter"
    assert [r["id"] for r in story["responses"]] == [second, first]  # newest first
    assert [r["category"] for r in story["responses"]] == ["promoter", "detractor"]
    assert story["responses"][1]["comment"].startswith("Support never called")
    assert story["responses"][1]["touchpoint"] == "support"
    assert story["responses"][1]["classified_at"] is not None and story["responses"][1]["sentiment"]
    assert [(t["id"], t["status"], t["outcome"]) for t in story["tasks"]] == [(task["id"], "resolved", "resolved")]
    assert story["tasks"][0]["sla_met"] is True
    assert [(o["outcome"], o["revenue"]) for o in story["business_outcomes"]] == [("renewed", 1200.0)]
    assert [r["response_id"] for r in story["referral_requests"]] in ([second], [])
    assert story["eligibility"]["eligible"] is False
    assert story["eligibility"]["reason"] == "recently_responded"


async def test_a_correction_shows_in_the_story(client, make_key, pump):
    admin = await make_key("admin")
    response_id = await _answer(client, admin, 4, "The app is slow")
    await pump()
    corrected = await client.put(
        f"/v1/responses/{response_id}/classification", json={"themes": ["pricing"]}, headers=admin
    )
    assert corrected.status_code == 200, corrected.text
    story = (await client.get(f"/v1/customers/{CUSTOMER['id']}", headers=admin)).json()
    assert [t["id"] for t in story["responses"][0]["themes"]] == ["pricing"]


async def test_unknown_and_erased_customers_are_404_problems(client, make_key, pump):
    admin = await make_key("admin")
    unknown = await client.get("/v1/customers/nobody-here", headers=admin)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    await _answer(client, admin, 3, "Please forget me")
    await pump()
    assert (await client.get(f"/v1/customers/{CUSTOMER['id']}", headers=admin)).status_code == 200
    erased = await client.delete(f"/v1/customers/{CUSTOMER['id']}", headers=admin)
    assert erased.status_code in (200, 202, 204), erased.text
    assert (await client.get(f"/v1/customers/{CUSTOMER['id']}", headers=admin)).status_code == 404
    found = await client.get("/v1/customers", params={"email": CUSTOMER["email"]}, headers=admin)
    assert found.json() == {"customers": []}


async def test_the_story_needs_responses_read(client, make_key):
    admin = await make_key("admin")
    await _answer(client, admin, 8, "Fine")
    for scopes in (("tasks:read",), ("responses:write",)):
        reply = await client.get(f"/v1/customers/{CUSTOMER['id']}", headers=await make_key(*scopes))
        assert reply.status_code == 403, (scopes, reply.text)


async def test_customers_are_found_by_email_in_any_case_or_by_id(client, make_key):
    admin = await make_key("admin")
    await _answer(client, admin, 6, "ok")
    await _answer(client, admin, 7, "ok", id="cust-other", email="someone.else@example.org")
    by_email = await client.get("/v1/customers", params={"email": "rita.story@example.ORG"}, headers=admin)
    assert [c["customer_id"] for c in by_email.json()["customers"]] == [CUSTOMER["id"]]
    by_id = await client.get("/v1/customers", params={"customer_id": "cust-other"}, headers=admin)
    assert [c["email"] for c in by_id.json()["customers"]] == ["someone.else@example.org"]
    # LIKE wildcards in the search are text, not patterns
    wild = await client.get("/v1/customers", params={"email": "%@example.org"}, headers=admin)
    assert wild.json() == {"customers": []}
    nothing = await client.get("/v1/customers", headers=admin)
    assert nothing.status_code == 422
