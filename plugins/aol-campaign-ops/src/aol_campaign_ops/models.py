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
    Text,
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


class ItemStatus(StrEnum):
    """Where a calendar item is on its way out: SCHEDULED until its time, QUEUED as a
    POST_SOCIAL action, then what that action came to."""

    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"
    HELD = "HELD"


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


class CalendarItem(Base):
    """A post of the campaign's content calendar, published through POST_SOCIAL (aol-social)
    when ``publish_at`` comes; ``post_action_id`` is that action, read back by later ticks."""

    __tablename__ = "campaign_ops_calendar_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        Integer,
        # the conventional name is past PostgreSQL's 63 characters
        ForeignKey("campaign_ops_campaigns.id", ondelete="CASCADE",
                   name="fk_campaign_ops_calendar_items_campaign_id"),
    )
    platform: Mapped[str] = mapped_column(String(50))
    #: the aol-social account to post from (None: the platform's default account)
    account: Mapped[str | None] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    #: POST_SOCIAL's media entries: ``{"path"|"url": ..., "alt": ...}``
    media: Mapped[Any] = mapped_column(JSONValue, default=list)
    publish_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.SCHEDULED.value)
    post_action_id: Mapped[int | None] = mapped_column(Integer)
    remote_url: Mapped[str | None] = mapped_column(String(2000))
    #: why the post failed or is held, as the action said
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(_one_of("status", ItemStatus), name="status"),
        Index("ix_campaign_ops_calendar_items_status_publish", "status", "publish_at"),
        Index("ix_campaign_ops_calendar_items_campaign_publish", "campaign_id", "publish_at"),
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
