"""Request and response bodies of the privacy API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ErasureOut(BaseModel):
    erasure_id: str = Field(description="The audit record of this erasure.")
    status: str = Field("erased", description="Always 'erased': the erasure committed before this answer.")
    erased_at: datetime
    counts: dict[str, int] = Field(description="Rows erased or anonymised, per table or payload kind.")


class ErasureRecordOut(BaseModel):
    """One audit record: who asked, why, when and what changed; never the person or the pseudonym."""

    erasure_id: str
    customer_id_sha256: str = Field(description="SHA-256 (hex) of the erased customer id, to match a request.")
    requested_by: str = Field(description="Name of the API key that asked.")
    reason: str | None
    erased_at: datetime
    counts: dict[str, int]


class ErasureList(BaseModel):
    erasures: list[ErasureRecordOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next, older page; null on the last.")
