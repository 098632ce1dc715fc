"""Seeding for analytics tests: real responses through the real API, classified by the pump."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from npsloop.services.classifier.models import StoredClassification

Seed = Callable[..., Awaitable[list[str]]]


def answer(score: int, customer: str, at: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"score": score, "customer": {"id": customer}, "responded_at": at}
    segment = extra.pop("segment", None)
    if segment:
        body["customer"]["segment"] = segment
    body.update(extra)
    return body


@pytest.fixture
def seed(client, make_key, pump) -> Seed:
    """POST responses in batches, then drain every consumer; returns ids in order."""

    async def post(*answers: dict[str, Any]) -> list[str]:
        headers = await make_key("responses:write", name="seeder")
        ids: list[str] = []
        for start in range(0, len(answers), 1000):
            reply = await client.post(
                "/v1/responses/batch", json={"responses": list(answers[start : start + 1000])}, headers=headers
            )
            assert reply.status_code == 202, reply.text
            results = reply.json()["results"]
            assert all(r["status"] == "accepted" for r in results), results
            ids += [r["id"] for r in results]
        await pump()
        return ids

    return post


@pytest.fixture
def set_themes(runtime) -> Callable[[dict[str, list[str]]], Awaitable[None]]:
    """Overwrite what the model found, so theme tests do not depend on the lexicon."""

    async def write(themes_by_response: dict[str, list[str]]) -> None:
        async with runtime.db.unit_of_work() as session:
            for response_id, themes in themes_by_response.items():
                row = await session.get(StoredClassification, response_id)
                row.themes = [{"id": t, "confidence": 0.9} for t in themes]

    return write
