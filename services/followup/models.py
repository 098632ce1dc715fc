"""Follow-up tasks with their SLA clock as stored data, their audit trail, referrals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from npsloop.shared.db import Base, BigIntPK, JSONText, UTCDateTime


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Unique: one task per detractor response, whatever redeliveries happen.
    response_id: Mapped[str] = mapped_column(String(36), unique=True)
    customer_id: Mapped[str] = mapped_column(String(200))
    customer: Mapped[dict[str, Any]] = mapped_column(JSONText)
    account_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    segment: Mapped[str | None] = mapped_column(String(100), nullable=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    themes: Mapped[list[dict[str, Any]]] = mapped_column(JSONText)
    status: Mapped[str] = mapped_column(String(20))  # open | acknowledged | resolved
    assignee: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Policy channel names chosen by routing when the task opened; alerts go there.
    channel: Mapped[str | None] = mapped_column(String(100), nullable=True)
    escalation_channel: Mapped[str | None] = mapped_column(String(100), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(100), nullable=True)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_tasks_customer_id", "customer_id"),
        Index("ix_tasks_status_due_at", "status", "due_at"),
    )


class TaskEvent(Base):
    """Audit trail: every change to a task, who made it and when."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(36), ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(50))
    actor: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONText)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Never loaded (lazy="raise"): it only tells the unit of work that a new task's row is
    # inserted before its audit rows, so opening a task needs no flush of its own.
    task: Mapped[Task] = relationship(lazy="raise")


class ReferralRequest(Base):
    __tablename__ = "referral_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(36), unique=True)
    customer_id: Mapped[str] = mapped_column(String(200), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RoutingCursor(Base):
    """Where each team's round-robin stands; survives restarts."""

    __tablename__ = "routing_cursors"

    team: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class CustomerCategory(Base):
    """Each customer's latest NPS category, to see a change when they answer again."""

    __tablename__ = "customer_categories"

    customer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    category: Mapped[str] = mapped_column(String(20))
    response_id: Mapped[str] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Recovery(Base):
    """A resolved detractor task and the category of that customer's next answer.

    ``recovered`` is true when the next answer is passive or promoter; the recovery rate is
    the share of these rows that recovered. Analytics read this table.
    """

    __tablename__ = "recoveries"

    task_id: Mapped[str] = mapped_column(String(36), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200), index=True)
    account_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detractor_response_id: Mapped[str] = mapped_column(String(36))
    detractor_score: Mapped[int] = mapped_column(Integer)
    next_response_id: Mapped[str] = mapped_column(String(36))
    next_score: Mapped[int] = mapped_column(Integer)
    next_category: Mapped[str] = mapped_column(String(20))
    recovered: Mapped[bool] = mapped_column(Boolean)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SurveySend(Base):
    """A survey an app reports having sent (``POST /v1/surveys/sent``), for eligibility."""

    __tablename__ = "survey_sends"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    account_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    touchpoint: Mapped[str | None] = mapped_column(String(100), nullable=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))


class BusinessOutcome(Base):
    """Churn, renewal, expansion, contraction of a customer or account, to set against NPS."""

    __tablename__ = "business_outcomes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    account_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    revenue: Mapped[float | None] = mapped_column(Float, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    occurred_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DigestSent(Base):
    """One digest per team and period: the unique key makes it exactly once across restarts."""

    __tablename__ = "digests"

    team: Mapped[str] = mapped_column(String(100), primary_key=True)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    channel: Mapped[str] = mapped_column(String(100))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONText)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
