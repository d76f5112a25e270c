"""AOL plugin ``aol-campaign-ops``: operator tasks of marketing campaigns.

Action types: ``CAMPAIGN_TICK``, ``ESCALATE_OVERDUE_TASKS``, ``WEEKLY_CAMPAIGN_SUMMARY``, and
the fan-outs its schedules run (``TICK_ACTIVE_CAMPAIGNS``, ``SUMMARIZE_FINISHED_WEEKS``);
operators use ``aol campaigns ...``. Applications use the functions below inside their own
session and transaction.
"""

from aol_campaign_ops.api import (
    CAMPAIGN_TICK,
    ESCALATE_OVERDUE_TASKS,
    WEEKLY_CAMPAIGN_SUMMARY,
    CampaignNotFound,
    add_calendar_item,
    add_task,
    create_campaign,
    get_campaign,
    record_metric,
    schedule_daily_tick,
    schedule_weekly_summary,
    set_task_status,
)
from aol_campaign_ops.models import (
    AuditEntry,
    CalendarItem,
    Campaign,
    CampaignStatus,
    ItemStatus,
    MetricEntry,
    Task,
    TaskStatus,
    TaskType,
)

__all__ = [
    "CAMPAIGN_TICK",
    "ESCALATE_OVERDUE_TASKS",
    "WEEKLY_CAMPAIGN_SUMMARY",
    "AuditEntry",
    "CalendarItem",
    "Campaign",
    "CampaignNotFound",
    "CampaignStatus",
    "ItemStatus",
    "MetricEntry",
    "Task",
    "TaskStatus",
    "TaskType",
    "add_calendar_item",
    "add_task",
    "create_campaign",
    "get_campaign",
    "record_metric",
    "schedule_daily_tick",
    "schedule_weekly_summary",
    "set_task_status",
]
