"""Stored corrections as training examples for ``npsloop classifier train``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier import repository
from npsloop.services.classifier.training import LabelledExample
from npsloop.services.ingest import service as ingest


async def load_corrections(session: AsyncSession) -> list[LabelledExample]:
    """One example per corrected response: its comment and score with the corrected fields.

    A field nobody corrected stays unlabelled (None) rather than borrowing the model's own
    guess, so training never learns from its own mistakes. Responses without a comment
    teach nothing about themes or wording and are left out.
    """
    corrections = await repository.all_effective_corrections(session)
    responses = await ingest.responses_by_id(session, list(corrections))
    examples = []
    for response_id, correction in corrections.items():
        response = responses.get(response_id)
        if response is None or not (response["comment"] or "").strip():
            continue
        examples.append(
            LabelledExample(response["comment"], response["score"], correction.themes, correction.sentiment)
        )
    return examples
