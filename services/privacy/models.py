"""The audit trail of erasures: proof that a request was honoured, without the data itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from npsloop.shared.db import Base, JSONText, UTCDateTime


class ErasureRecord(Base):
    """One erasure request and what it changed.

    The customer id is kept only as a SHA-256 so a repeated request can be matched to this
    record. ``pseudonym`` is what the customer's rows were renamed to: a repeated request
    finds by it the copies a first one could not reach, and consumers rename events still
    in flight to it. It is never shown by the API.
    """

    __tablename__ = "privacy_erasures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id_sha256: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    pseudonym: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: erased before 0005
    counts: Mapped[dict[str, Any]] = mapped_column(JSONText)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_privacy_erasures_customer_id_sha256", "customer_id_sha256"),)
