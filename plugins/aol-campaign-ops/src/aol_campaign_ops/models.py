"""The tables aol-campaign-ops owns; its migrations (``migrations/``) create and evolve them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from aol_core import NAMING_CONVENTION, TYPE_ANNOTATION_MAP, JSONValue
from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class TaskType(StrEnum):
    POST = "POST"
    ENGAGE = "ENGAGE"
    FOLLOW_UP = "FOLLOW_UP"
    REVIEW = "REVIEW"
    ANALYZE = "ANALYZE"
    MANUAL = "MANUAL"


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    DUE = "DUE"
    OVERDUE = "OVERDUE"
    DONE = "DONE"
    MISSED = "MISSED"
    BLOCKED = "BLOCKED"


class CampaignStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


def _one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP


class Campaign(Base):
    __tablename__ = "campaign_ops_campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.ACTIVE.value)
    created_at: Mapped[datetime]
    #: who escalations and weekly reports are sent to (None: nobody is e-mailed)
    owner_email: Mapped[str | None] = mapped_column(String(320))
    #: the IANA zone the campaign's days, weeks and Monday report are reckoned in
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: the campaign's first and last day in its zone (None: open); ticks stop after the last
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (
        CheckConstraint(_one_of("status", CampaignStatus), name="status"),
        CheckConstraint("ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on",
                        name="dates_in_order"),
    )


class Task(Base):
    """An operator task. ``source_key`` names what created a generated task (an escalation,
    a weekly summary), so the same source can never create it twice."""

    __tablename__ = "campaign_ops_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("campaign_ops_campaigns.id", ondelete="CASCADE")
    )
    task_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.PENDING.value)
    title: Mapped[str] = mapped_column(String(300))
    #: None: the task has no deadline, so it never becomes DUE or OVERDUE
    due_at: Mapped[datetime | None]
    #: set when an escalation listed this overdue task; it is never escalated again
    escalated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    details: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    source_key: Mapped[str | None] = mapped_column(String(255), unique=True)

    __table_args__ = (
        CheckConstraint(_one_of("task_type", TaskType), name="task_type"),
        CheckConstraint(_one_of("status", TaskStatus), name="status"),
        Index("ix_campaign_ops_tasks_campaign_status", "campaign_id", "status"),
        Index("ix_campaign_ops_tasks_campaign_due", "campaign_id", "due_at"),
    )


class MetricEntry(Base):
    __tablename__ = "campaign_ops_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("campaign_ops_campaigns.id", ondelete="CASCADE")
    )
    platform: Mapped[str] = mapped_column(String(50))
    recorded_at: Mapped[datetime]
    impressions: Mapped[int] = mapped_column(Integer, default=0)
    engagement: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint(
            "impressions >= 0 AND engagement >= 0 AND clicks >= 0", name="non_negative"
        ),
        Index("ix_campaign_ops_metrics_campaign_recorded", "campaign_id", "recorded_at"),
    )


class AuditEntry(Base):
    __tablename__ = "campaign_ops_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("campaign_ops_campaigns.id", ondelete="CASCADE"), index=True
    )
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(100))
    before: Mapped[Any | None] = mapped_column(JSONValue)
    after: Mapped[Any | None] = mapped_column(JSONValue)
    created_at: Mapped[datetime]


metadata = Base.metadata
