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


async def test_a_trained_classifier_says_how_it_was_trained(client, make_key, runtime):
    from npsloop.services.classifier.trained import TrainedClassifier
    from npsloop.services.classifier.training import LabelledExample, train

    base = runtime.classifier.current
    examples = [
        LabelledExample(comment=f"The price is too high, plan {i}", score=3, themes=["pricing"], sentiment="negative")
        for i in range(12)
    ] + [
        LabelledExample(
            comment=f"Support answered fast, ticket {i}", score=9, themes=["support_experience"], sentiment="positive"
        )
        for i in range(12)
    ]
    runtime.classifier.current = TrainedClassifier(train(examples, base=base), base)
    body = (await client.get("/v1/classifier", headers=await make_key("admin"))).json()
    assert body["kind"] == "trained" and isinstance(body["trained"], dict) and body["trained"]
