"""Request and response bodies of the privacy API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ErasureOut(BaseModel):
    erasure_id: str = Field(description="The audit record of this erasure.")
    status: str = Field("erased", description="Always 'erased': the erasure committed before this answer.")
    erased_at: datetime
    counts: dict[str, int] = Field(description="Rows erased or anonymised, per table or payload kind.")
