"""GET /v1/classifier/review-queue: the comments whose correction teaches most, least certain first."""

from __future__ import annotations

from npsloop.services.classifier import review
from npsloop.services.classifier.review_queue import SAMPLE_REASON, ReadingCache, encode_cursor
from tests.factories import post_response

QUEUE = "/v1/classifier/review-queue"
# Invented comments, not rows of a labelled set: which one the built-in model reads how.
PRAISE_FROM_A_DETRACTOR = "Wonderful people, brilliant and lovely, thank you so much"
SURE_AND_HAPPY = "Excellent, really happy"


def test_a_sentiment_against_the_score_outranks_a_theme_near_its_threshold_and_a_sure_reading_teaches_nothing():
    sure = review.Reading({"pricing": 0.98, "ease_of_use": 0.0}, "negative", 0.9)
    near = review.Reading({"pricing": 0.52, "ease_of_use": 0.0}, "negative", 0.9)
    against = review.Reading({"pricing": 0.98, "ease_of_use": 0.0}, "positive", 0.9)
    assert review.prioritise(sure, 2).priority == 0 and review.prioritise(sure, 2).reasons == ()
    theme = review.prioritise(near, 2)
    assert theme.reasons == ("uncertain theme pricing",) and theme.uncertain_themes == (("pricing", 0.52),)
    disagreement = review.prioritise(against, 2)
    assert disagreement.reasons == ("sentiment disagrees with score",)
    assert disagreement.priority > theme.priority > 0
    # A promoter's comment read as negative disagrees too; a passive's does not.
    promoter = review.Reading({"pricing": 0.0}, "negative", 0.9)
    assert "sentiment disagrees with score" in review.prioritise(promoter, 10).reasons
    assert review.prioritise(promoter, 8).priority == 0


def test_a_sentiment_near_its_boundary_and_an_unthemed_detractor_are_uncertain():
    unsure = review.prioritise(review.Reading({"pricing": 0.9}, "neutral", 0.05), 8)
    assert unsure.reasons == ("uncertain sentiment neutral",) and unsure.priority > 0.7
    unthemed = review.prioritise(review.Reading({"pricing": 0.1}, "negative", 0.9), 3)
    assert unthemed.reasons == ("no theme in a detractor's comment",)


def test_the_cache_reads_each_comment_once_per_classifier_version(monkeypatch):
    from npsloop.services.classifier.model import BuiltinClassifier

    model = BuiltinClassifier()
    reads: list[str] = []
    original = review.read

    def counting_read(classifier, comment, score):
        reads.append(comment)
        return original(classifier, comment, score)

    monkeypatch.setattr(review, "read", counting_read)
    cache = ReadingCache(size=10)
    candidates = [review.Candidate("a", PRAISE_FROM_A_DETRACTOR, 2)]
    first = cache.priorities(model, candidates)
    assert cache.priorities(model, candidates) == first and len(reads) == 1
    monkeypatch.setattr(model, "version", "trained-x")  # a new version reads it again
    cache.priorities(model, candidates)
    assert len(reads) == 2


async def _seed(client, headers, pump) -> dict[str, str]:
    ids = {
        "praise_from_detractor": await post_response(
            client, headers, score=2, customer="c-praise", comment=PRAISE_FROM_A_DETRACTOR
        ),
        "invoice": await post_response(
            client, headers, score=1, customer="c-invoice", comment="The invoice was a bit odd this month"
        ),
        "slow_promoter": await post_response(
            client, headers, score=9, customer="c-slow", comment="The app is slow and it keeps crashing"
        ),
        "reports": await post_response(
            client, headers, score=8, customer="c-reports", comment="Reports could load faster"
        ),
        "sure": await post_response(client, headers, score=10, customer="c-sure", comment=SURE_AND_HAPPY),
        "empty": await post_response(client, headers, score=4, customer="c-empty", comment="n/a"),
        "no_comment": await post_response(client, headers, score=3, customer="c-none"),
    }
    await pump()
    return ids


async def test_the_queue_takes_turns_between_what_teaches_most_and_a_fixed_random_sample(client, make_key, pump):
    headers = await make_key("admin")
    ids = await _seed(client, headers, pump)
    reply = await client.get(QUEUE, headers=headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    items = body["items"]
    shown = [i["response_id"] for i in items]
    assert body["next_cursor"] is None and body["window"] == 6  # the six with a comment
    assert len(shown) == len(set(shown)) == 5  # once each; "n/a" has nothing to read
    assert not {ids["empty"], ids["no_comment"]} & set(shown)
    # Ranked and sampled items alternate while both lists last; the ranked ones, most first.
    sampled = [SAMPLE_REASON in i["reasons"] for i in items]
    assert sampled[:4] == [False, True, False, True]
    ranked = [i["priority"] for i in items if SAMPLE_REASON not in i["reasons"]]
    assert ranked == sorted(ranked, reverse=True) and all(p > 0 for p in ranked)
    # A sure reading teaches nothing by rank; it is there only as part of the sample.
    sure = next(i for i in items if i["response_id"] == ids["sure"])
    assert sure["priority"] == 0 and sure["reasons"] == [SAMPLE_REASON]
    praise = next(i for i in items if i["response_id"] == ids["praise_from_detractor"])
    assert praise["reasons"][0] == "sentiment disagrees with score"
    assert praise["comment"] == PRAISE_FROM_A_DETRACTOR and praise["score"] == 2
    assert praise["sentiment"] == "positive" and praise["category"] == "detractor"
    assert praise["classifier_version"].startswith("builtin-")
    for item in items:
        assert item["reasons"] and all(isinstance(r, str) for r in item["reasons"])
        for theme in item["uncertain_themes"]:
            assert f"uncertain theme {theme['id']}" in item["reasons"]


async def test_a_corrected_response_leaves_the_queue_and_an_erased_one_never_shows(client, make_key, pump):
    headers = await make_key("admin")
    ids = await _seed(client, headers, pump)
    before = [i["response_id"] for i in (await client.get(QUEUE, headers=headers)).json()["items"]]
    first = before[0]
    reply = await client.put(
        f"/v1/responses/{first}/classification", headers=headers, json={"themes": [], "sentiment": "positive"}
    )
    assert reply.status_code == 200, reply.text
    after = [i["response_id"] for i in (await client.get(QUEUE, headers=headers)).json()["items"]]
    assert sorted(after) == sorted(set(before) - {first})
    assert ids["invoice"] in after
    assert (await client.delete("/v1/customers/c-invoice", headers=headers)).status_code == 200
    await pump()
    erased = [i["response_id"] for i in (await client.get(QUEUE, headers=headers)).json()["items"]]
    assert sorted(erased) == sorted(set(after) - {ids["invoice"]})


async def test_pages_follow_the_cursor_without_gaps_or_repeats(client, make_key, pump):
    headers = await make_key("responses:read")
    await _seed(client, await make_key("admin"), pump)
    whole = [i["response_id"] for i in (await client.get(QUEUE, headers=headers)).json()["items"]]
    assert len(whole) >= 3
    for limit in (1, 2, 3):
        paged, cursor = [], None
        while True:
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            reply = await client.get(QUEUE, headers=headers, params=params)
            assert reply.status_code == 200, reply.text
            page = reply.json()
            assert len(page["items"]) <= limit
            paged += [i["response_id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == whole, limit


async def test_it_needs_a_key_that_reads_responses(client, make_key):
    assert (await client.get(QUEUE)).status_code == 401
    for scopes in (("tasks:read",), ("analytics:read",), ("responses:write",)):
        reply = await client.get(QUEUE, headers=await make_key(*scopes))
        assert reply.status_code == 403, scopes
        assert reply.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(QUEUE, headers=await make_key("responses:read"))).status_code == 200


async def test_a_bad_limit_or_cursor_is_422_naming_the_field(client, make_key):
    headers = await make_key("responses:read")
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": encode_cursor(1.0, "")}, "cursor"),
    ):
        reply = await client.get(QUEUE, headers=headers, params=params)
        assert reply.status_code == 422, (params, reply.text)
        assert field in reply.text, reply.text


async def test_the_queue_is_in_the_openapi_document_with_its_answers(client):
    operation = (await client.get("/openapi.json")).json()["paths"][QUEUE]["get"]
    assert {"200", "401", "403", "422"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} == {"limit", "cursor"}


def test_a_trained_model_is_read_with_every_theme_decision_and_its_sentiment_head():
    from npsloop.services.classifier.model import BuiltinClassifier
    from npsloop.services.classifier.trained import TrainedClassifier
    from npsloop.services.classifier.training import LabelledExample, train

    base = BuiltinClassifier()
    sentiments = ("positive", "neutral", "negative")
    examples = [
        LabelledExample(f"The price is too high, plan {i}", 3, ["pricing"], sentiments[i % 3]) for i in range(120)
    ] + [
        LabelledExample(f"Support answered fast, ticket {i}", 9, ["support_experience"], sentiments[(i + 1) % 3])
        for i in range(120)
    ]
    model = TrainedClassifier(train(examples, base=base), base)
    reading = review.read(model, "The price of the plan is high", 4)
    assert reading is not None and set(reading.decisions) == set(base.theme_ids)
    tagged = {t.id for t in model.classify("The price of the plan is high", 4).themes}
    assert {t for t, d in reading.decisions.items() if d >= 0.5} == tagged
    assert reading.sentiment == model.classify("The price of the plan is high", 4).sentiment
    assert 0 <= reading.sentiment_margin <= 1
    assert review.read(model, "n/a", 4) is None
