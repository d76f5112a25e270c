"""The original AICMO application's tables (commit 444a948), written from its column lists,
for tests of ``aol db adopt``: its five AOL tables and the campaign tables AOL's campaign
plugin takes over. Times are naive, as the original stored them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

original = MetaData()


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


aol_actions = Table(
    "aol_actions", original, _id(),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("action_type", String(100), nullable=False),
    Column("payload_json", Text),
    Column("status", String(20), nullable=False),
    Column("not_before_utc", DateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at_utc", DateTime, nullable=False),
    Index("idx_aol_actions_status", "status"),
    Index("idx_aol_actions_not_before", "not_before_utc"),
    Index("idx_aol_actions_idempotency", "idempotency_key"),
)

aol_execution_logs = Table(
    "aol_execution_logs", original, _id(),
    Column("action_id", Integer, nullable=False),  # no foreign key: the original had none
    Column("ts_utc", DateTime, nullable=False),
    Column("level", String(20), nullable=False),
    Column("message", Text),
    Column("artifact_ref", Text),
    Column("artifact_sha256", String(64)),
    Index("idx_aol_execution_logs_action_id", "action_id"),
    Index("idx_aol_execution_logs_ts_utc", "ts_utc"),
)

aol_control_flags = Table(
    "aol_control_flags", original, _id(),
    Column("paused", Boolean, nullable=False, default=False),
    Column("killed", Boolean, nullable=False, default=False),
    Column("proof_mode", Boolean, nullable=False, default=False),
    Column("updated_at_utc", DateTime, nullable=False),
)

aol_lease = Table(
    "aol_lease", original, _id(),
    Column("owner", String(255), nullable=False, unique=True),
    Column("acquired_at_utc", DateTime, nullable=False),
    Column("renewed_at_utc", DateTime, nullable=False),
    Column("expires_at_utc", DateTime, nullable=False),
)

aol_tick_ledger = Table(
    "aol_tick_ledger", original, _id(),
    Column("started_at_utc", DateTime, nullable=False),
    Column("finished_at_utc", DateTime),
    Column("status", String(20), nullable=False),
    Column("notes", Text),
    Column("actions_attempted", Integer, nullable=False, default=0),
    Column("actions_succeeded", Integer, nullable=False, default=0),
    Index("idx_aol_tick_ledger_started_at", "started_at_utc"),
)

campaigns = Table(
    "campaign_ops_campaigns", original,
    Column("id", Integer, primary_key=True, index=True),
    Column("name", String(255), nullable=False, unique=True, index=True),
    Column("client_name", String(255), nullable=False),
    Column("venture_name", String(255)),
    Column("objective", Text, nullable=False),
    Column("platforms", JSON, nullable=False),
    Column("start_date", DateTime, nullable=False),
    Column("end_date", DateTime, nullable=False),
    Column("cadence", JSON, nullable=False),
    Column("primary_cta", String(255), nullable=False),
    Column("lead_capture_method", String(255)),
    Column("status", String(20), nullable=False, index=True),  # PLANNED ACTIVE PAUSED COMPLETED
    Column("created_at", DateTime, nullable=False, index=True),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_campaign_ops_campaigns_status_created", "status", "created_at"),
)

operator_tasks = Table(
    "campaign_ops_operator_tasks", original,
    Column("id", Integer, primary_key=True, index=True),
    Column("campaign_id", Integer, ForeignKey("campaign_ops_campaigns.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("calendar_item_id", Integer),  # its table is not part of this fixture
    Column("task_type", String(50), nullable=False),
    Column("platform", String(50), nullable=False),
    Column("due_at", DateTime, nullable=False, index=True),
    Column("title", String(255), nullable=False),
    Column("instructions_text", Text, nullable=False),
    Column("copy_text", Text),
    Column("asset_ref", String(512)),
    Column("status", String(20), nullable=False, index=True),
    Column("completion_proof_type", String(50)),
    Column("completion_proof_value", Text),
    Column("completed_at", DateTime),
    Column("blocked_reason", Text),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_campaign_ops_operator_tasks_campaign_due", "campaign_id", "due_at"),
    Index("ix_campaign_ops_operator_tasks_status_due", "status", "due_at"),
)

metric_entries = Table(
    "campaign_ops_metric_entries", original,
    Column("id", Integer, primary_key=True, index=True),
    Column("campaign_id", Integer, ForeignKey("campaign_ops_campaigns.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("platform", String(50), nullable=False, index=True),
    Column("date", DateTime, nullable=False, index=True),
    Column("metric_name", String(100), nullable=False),
    Column("metric_value", Float, nullable=False),
    Column("notes", Text),
    Column("created_at", DateTime, nullable=False, index=True),
)

audit_log = Table(
    "campaign_ops_audit_log", original,
    Column("id", Integer, primary_key=True, index=True),
    Column("actor", String(100), nullable=False),
    Column("action", String(255), nullable=False),
    Column("entity_type", String(50)),
    Column("entity_id", Integer),
    Column("before_json", JSON),
    Column("after_json", JSON),
    Column("notes", Text),
    Column("created_at", DateTime, nullable=False, index=True),
    Index("ix_campaign_ops_audit_log_actor_created", "actor", "created_at"),
    Index("ix_campaign_ops_audit_log_entity", "entity_type", "entity_id"),
)

#: the original's five AOL tables
AOL_TABLES = (aol_actions, aol_execution_logs, aol_control_flags, aol_lease, aol_tick_ledger)
#: its two campaign tables whose names aol-campaign-ops uses too
COLLIDING_CAMPAIGN_TABLES = (campaigns, audit_log)


def create_original_schema(engine: Engine, *, campaign_work: bool = False) -> None:
    """The original's five AOL tables and its two colliding campaign tables; with
    ``campaign_work`` also its operator tasks and metric entries."""
    tables = [*AOL_TABLES, *COLLIDING_CAMPAIGN_TABLES]
    if campaign_work:
        tables += [operator_tasks, metric_entries]
    original.create_all(engine, tables=tables)
