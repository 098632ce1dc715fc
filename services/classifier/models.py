"""The current classification of each response, stamped with the classifier version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, JSONText, UTCDateTime


class StoredClassification(Base):
    __tablename__ = "classifications"

    response_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    classifier_version: Mapped[str] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(20), nullable=True)
    themes: Mapped[list[dict[str, Any]]] = mapped_column(JSONText)
    sentiment: Mapped[str] = mapped_column(String(20))
    sentiment_score: Mapped[float] = mapped_column(Float)
    language: Mapped[str] = mapped_column(String(10))
    classified_at: Mapped[datetime] = mapped_column(UTCDateTime)
