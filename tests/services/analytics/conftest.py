"""Seeding for analytics tests: real responses through the real API, classified by the pump."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from npsloop.services.classifier.models import StoredClassification
from tests.factories import post_responses

Seed = Callable[..., Awaitable[list[str]]]


@pytest.fixture
def seed(client, make_key, pump) -> Seed:
    """POST responses in batches, then drain every consumer; returns ids in order."""

    async def post(*bodies: dict[str, Any]) -> list[str]:
        ids = await post_responses(client, await make_key("responses:write", name="seeder"), bodies)
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
