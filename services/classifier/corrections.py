"""Stored corrections as training examples for ``npsloop classifier train``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier import repository
from npsloop.services.classifier.training import LabelledExample


async def load_corrections(session: AsyncSession) -> list[LabelledExample]:
    """One example per corrected response: its comment and score with the corrected fields.

    A field nobody corrected stays unlabelled (None) rather than borrowing the model's own
    guess, so training never learns from its own mistakes. Responses without a comment
    teach nothing about themes or wording and are left out.
    """
    examples = []
    for response, correction in await repository.corrected_responses(session):
        comment = response.comment
        if comment is None or not comment.strip():
            continue
        examples.append(LabelledExample(comment, response.score, correction.themes, correction.sentiment))
    return examples
