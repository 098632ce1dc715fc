"""Request and response bodies of the classifier's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Sentiment = Literal["positive", "neutral", "negative"]


class CorrectionIn(BaseModel):
    """A person's correction; give ``themes``, ``sentiment`` or both. Omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    themes: list[str] | None = Field(
        None, max_length=50, description="The theme ids that apply (replaces the themes); [] = none apply."
    )
    sentiment: Sentiment | None = Field(None, description="The comment's sentiment.")

    @model_validator(mode="after")
    def _something_to_correct(self) -> CorrectionIn:
        if self.themes is None and self.sentiment is None:
            raise ValueError("give themes, sentiment or both")
        return self


class ThemeOut(BaseModel):
    id: str
    confidence: float


class ClassificationOut(BaseModel):
    response_id: str
    category: str | None
    themes: list[ThemeOut]
    sentiment: Sentiment
    sentiment_score: float
    language: str
    classifier_version: str
    classified_at: datetime
    corrected_by: str
    corrected_at: datetime


class ThemeDefinitionOut(BaseModel):
    id: str
    label: str = Field(description="What people read; the policy file may rename a theme.")


class ClassifierOut(BaseModel):
    version: str = Field(description="The classifier version new classifications are stored with.")
    kind: Literal["built-in", "trained"]
    trained: dict | None = Field(
        None, description="How a trained version was fitted (counts of labels, kept built-in themes, …)."
    )
    themes: list[ThemeDefinitionOut] = Field(description="The active taxonomy, for pickers and labels.")


class ReviewItemOut(BaseModel):
    response_id: str
    comment: str
    score: int | None
    category: str | None
    themes: list[ThemeOut] = Field(description="The stored themes, as people see them now.")
    sentiment: Sentiment
    sentiment_score: float
    language: str
    classifier_version: str
    classified_at: datetime
    priority: float = Field(description="How much a correction would teach; the queue is sorted by it, largest first.")
    reasons: list[str] = Field(
        description='Why it is here, e.g. "sentiment disagrees with score", "uncertain theme pricing".'
    )
    uncertain_themes: list[ThemeOut] = Field(
        description="Themes whose decision came near their threshold (0.5), tagged or not, closest first: "
        "the ones to confirm or add."
    )


class ReviewQueueOut(BaseModel):
    items: list[ReviewItemOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page; null on the last page.")
    window: int = Field(description="How many of the newest commented responses were read for this queue.")
