"""Survey responses as product apps sent them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from npsloop.shared.db import Base, JSONText, UTCDateTime


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # De-duplication is per source (the API key's name), so two apps may reuse ids.
    source: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    customer_id: Mapped[str] = mapped_column(String(200))
    customer: Mapped[dict[str, Any]] = mapped_column(JSONText)
    account_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    segment: Mapped[str | None] = mapped_column(String(100), nullable=True)
    touchpoint: Mapped[str | None] = mapped_column(String(100), nullable=True)
    survey_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    survey_channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    lifecycle_stage: Mapped[str | None] = mapped_column(String(30), nullable=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONText)
    responded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment_added_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Imported from an earlier tool: follow-up skips it when its SLA had run out on arrival.
    history: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        UniqueConstraint("source", "idempotency_key"),
        Index("ix_responses_customer_id", "customer_id"),
        Index("ix_responses_received_at", "received_at"),
    )
