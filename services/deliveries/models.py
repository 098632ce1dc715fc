"""Webhook subscriptions and every delivery attempt made to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from npsloop.shared.db import Base, BigIntPK, JSONText, UTCDateTime


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSONText)
    secret: Mapped[str] = mapped_column(String(100))  # needed to sign, so stored as is
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Delivery(Base):
    """One event to one subscription or one policy channel; retried until delivered or dead-lettered."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=True
    )
    # Alerts to policy channels (slack | email | webhook): ``envelope`` holds the rendered
    # message and ``target`` the URL or addresses, so a later policy edit never changes it.
    channel: Mapped[str | None] = mapped_column(String(100), nullable=True)
    channel_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(200))
    envelope: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        UniqueConstraint("channel", "event_id"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # The worker leases each destination's due deliveries on their own (its share of the
        # sender), so a dead destination's backlog is never scanned to find anyone else's.
        Index("ix_deliveries_subscription_due", "subscription_id", "status", "next_attempt_at"),
        Index("ix_deliveries_channel_due", "channel", "status", "next_attempt_at"),
    )


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(36), ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class DeliveryDestination(Base):
    """A destination's circuit breaker, as its delivery worker last saw it.

    Kept in the database so a restarted worker does not hammer a destination it had backed
    off, and so the API and /metrics of any process can show the state.
    """

    __tablename__ = "delivery_destinations"

    key: Mapped[str] = mapped_column(String(150), primary_key=True)  # subscription:<id> | channel:<name>
    state: Mapped[str] = mapped_column(String(20))  # closed | open | half_open
    failures: Mapped[int] = mapped_column(Integer)  # destination-level failures in a row
    openings: Mapped[int] = mapped_column(Integer)  # times opened since the last success (sets the cooldown)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # next probe while open
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
