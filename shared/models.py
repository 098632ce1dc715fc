"""Tables owned by the shared library: the event log / outbox, consumer bookkeeping, keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from npsloop.shared.db import Base, BigIntPK, JSONText, UTCDateTime


class EventLogEntry(Base):
    """Outbox and database event log in one table.

    A service appends its events here in the transaction that changes its state. In the
    embedded mode consumers read this table by ``position``; in Kafka mode a relay
    forwards rows in ``position`` order and stamps ``published_at``.
    """

    __tablename__ = "event_log"

    position: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    envelope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_event_log_topic_position", "topic", "position"),
        Index("ix_event_log_unpublished", "published_at", "position"),
    )


class ConsumerPosition(Base):
    """How far a consumer group has read a topic of the database log."""

    __tablename__ = "consumer_positions"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(BigIntPK, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProcessedEvent(Base):
    """The idempotency record: written in the same transaction as the handler's effect."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeadLetter(Base):
    """An event a handler could not process after its bounded retries."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    envelope: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redriven_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_dead_letters_consumer_event", "consumer", "event_id"),)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; the clear key is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
