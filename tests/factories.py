"""Test data: request bodies with sensible defaults, and real rows made through the real API.

dispatch's tests/factories.py is the model: ``*_body`` builders make data without touching
anything (factory_boy's ``build``); the ``async`` ones create it (``create``). There is no
factory_boy here: npsloop's sessions are async, and rows made through the API take the
production path (validation, the outbox, the consumers), so a detractor's task below is one
the follow-up consumer really opened. Every creator checks the status the API promises, so a
test never builds on a request that quietly failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import httpx

Headers = dict[str, str]
Pump = Callable[[], Awaitable[int]]

# 0-6 is a detractor, and a detractor gets a follow-up task.
DETRACTOR_SCORE = 2
# What the built-in classifier reads as performance_reliability, negative.
DETRACTOR_COMMENT = "It keeps crashing"
BATCH_LIMIT = 1000  # what POST /v1/responses/batch takes at once


def response_body(
    score: int = 8,
    customer: str | dict[str, Any] = "cust-1",
    comment: str | None = None,
    *,
    segment: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A POST /v1/responses body: a passive score from one customer, no comment unless given.

    ``customer`` is the customer's id, or the whole customer object (email, name…).
    ``fields`` are any other documented fields (``responded_at``, ``external_id``,
    ``properties``, ``survey``…) and are sent as given.
    """
    body: dict[str, Any] = {
        "score": score,
        "customer": {"id": customer} if isinstance(customer, str) else dict(customer),
    }
    if segment is not None:
        body["customer"]["segment"] = segment
    if comment is not None:
        body["comment"] = comment
    body.update(fields)
    return body


def detractor_body(
    score: int = DETRACTOR_SCORE,
    customer: str | dict[str, Any] = "cust-1",
    comment: str | None = DETRACTOR_COMMENT,
    **fields: Any,
) -> dict[str, Any]:
    """A response body that opens a follow-up task: a low score with a complaint."""
    return response_body(score, customer, comment, **fields)


def webhook_body(url: str, events: Sequence[str] = ("*",)) -> dict[str, Any]:
    """A POST /v1/webhooks body: every event type unless ``events`` says which."""
    return {"url": url, "events": list(events)}


async def post_response(
    client: httpx.AsyncClient, headers: Headers, body: dict[str, Any] | None = None, **fields: Any
) -> str:
    """POST one response (``body``, or ``response_body(**fields)``); asserts the 202, returns its id."""
    reply = await client.post("/v1/responses", json=response_body(**fields) if body is None else body, headers=headers)
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


async def post_responses(client: httpx.AsyncClient, headers: Headers, bodies: Iterable[dict[str, Any]]) -> list[str]:
    """POST responses through the batch endpoint, a full batch at a time; asserts every one was
    accepted and returns their ids in order."""
    pending = list(bodies)
    ids: list[str] = []
    for start in range(0, len(pending), BATCH_LIMIT):
        reply = await client.post(
            "/v1/responses/batch", json={"responses": pending[start : start + BATCH_LIMIT]}, headers=headers
        )
        assert reply.status_code == 202, reply.text
        results = reply.json()["results"]
        assert all(r["status"] == "accepted" for r in results), results
        ids += [r["id"] for r in results]
    return ids


async def detractor_task(
    client: httpx.AsyncClient, headers: Headers, pump: Pump, body: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """POST a detractor (``body``, or ``detractor_body(**fields)``) from a customer with no task yet,
    run the consumers, and return the task the follow-up service opened: asserts it is the
    customer's only one. ``headers`` need responses:write and tasks:read."""
    body = detractor_body(**fields) if body is None else body
    response_id = await post_response(client, headers, body)
    await pump()
    reply = await client.get("/v1/tasks", params={"customer_id": body["customer"]["id"]}, headers=headers)
    assert reply.status_code == 200, reply.text
    (task,) = reply.json()["tasks"]
    assert task["response_id"] == response_id, task
    return task


async def subscribe_webhook(
    client: httpx.AsyncClient, headers: Headers, url: str, events: Sequence[str] = ("*",)
) -> dict[str, Any]:
    """Create a webhook subscription; asserts the 201 and returns it (with its one-time ``secret``)."""
    reply = await client.post("/v1/webhooks", json=webhook_body(url, events), headers=headers)
    assert reply.status_code == 201, reply.text
    return reply.json()
