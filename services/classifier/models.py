"""The current classification of each response, stamped with the classifier version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from npsloop.shared.db import Base, JSONText, UTCDateTime


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


class ClassificationCorrection(Base):
    """A person's correction of one response's themes and/or sentiment (append-only audit).

    The newest correction of each field wins over any model output, now and on replay.
    """

    __tablename__ = "classification_corrections"
    __table_args__ = (Index("ix_classification_corrections_response", "response_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    response_id: Mapped[str] = mapped_column(String(36))
    themes: Mapped[list[str] | None] = mapped_column(JSONText, nullable=True)  # None = themes not corrected
    sentiment: Mapped[str | None] = mapped_column(String(20), nullable=True)  # None = sentiment not corrected
    corrected_by: Mapped[str] = mapped_column(String(200))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime)
