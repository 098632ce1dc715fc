"""GET /v1/classifier: which version classifies now, how it was trained, the taxonomy with labels."""

from __future__ import annotations


async def test_the_built_in_classifier_and_its_labelled_taxonomy(client, make_key):
    reply = await client.get("/v1/classifier", headers=await make_key("tasks:read"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["kind"] == "built-in" and body["trained"] is None and body["version"]
    labels = {t["id"]: t["label"] for t in body["themes"]}
    assert labels["support_experience"] == "Support and staff"
    assert "performance_reliability" in labels


async def test_it_needs_a_reading_scope(client, make_key):
    reply = await client.get("/v1/classifier", headers=await make_key("responses:write"))
    assert reply.status_code == 403
