"""The tables AOL owns. Alembic migrations in ``aol_core/migrations`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from aol_core.timeutil import require_aware


class Status(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"  # permanent error: retrying cannot help
    DLQ = "DLQ"  # attempts used up
    CANCELLED = "CANCELLED"
    #: a handler held it for a person (outcome unknown); neither claimable nor finished
    HELD = "HELD"


CLAIMABLE = (Status.PENDING.value, Status.RETRY.value)
FINISHED = (Status.SUCCESS.value, Status.FAILED.value, Status.DLQ.value, Status.CANCELLED.value)
#: the condition of the finished-history index, as SQL
FINISHED_SQL = "status IN (" + ",".join(f"'{s}'" for s in FINISHED) + ")"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database; naive is refused.

    SQLite keeps no offset, so values are stored as naive UTC text that sorts correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = require_aware(value, "a stored time")
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONValue = JSON().with_variant(JSONB(), "postgresql")
ID = BigInteger().with_variant(Integer(), "sqlite")

#: constraint names, so migrations can refer to them; plugins may use it for their tables too
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: aware UTC datetimes and JSON (JSONB on PostgreSQL) for ``Mapped[...]`` annotations;
#: plugin tables declared with it store times and JSON the way AOL's own do
TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: UTCDateTime(), dict[str, Any]: JSONValue}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP


class Action(Base):
    __tablename__ = "aol_actions"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    action_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    not_before: Mapped[datetime]
    #: worker holding the claim, when its lease runs out, and the claim's fencing token
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    fencing_token: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any | None] = mapped_column(JSONValue)
    #: True forces proof mode for this action whatever the worker and global flags say
    proof_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the key its type's per-key limit counts it under (see ``aol_core.flow``), None when
    #: the type had no per-key limit at enqueue
    flow_key: Mapped[str | None] = mapped_column(String(255))
    #: the slot of the schedule that enqueued it (``context.slot``), None for other actions
    schedule_slot: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            "status IN ('PENDING','RUNNING','RETRY','SUCCESS','FAILED','DLQ','CANCELLED','HELD')",
            name="status",
        ),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        # A claim reads this index in claim order, one action type at a time, so a backlog
        # of other types is never walked; finished history never enters it. With the status
        # after the order, it alone answers how many wait, by type and status; with the flow
        # key last, a limited type's claim skips the keys at their limit without the table.
        Index(
            "ix_aol_actions_claim",
            "action_type",
            text("priority DESC"),
            "not_before",
            "id",
            "status",
            "flow_key",
            sqlite_where=text("status IN ('PENDING','RETRY')"),
            postgresql_where=text("status IN ('PENDING','RETRY')"),
        ),
        # Finding expired leases reads only running rows.
        Index(
            "ix_aol_actions_lease",
            "lease_expires_at",
            sqlite_where=text("status = 'RUNNING'"),
            postgresql_where=text("status = 'RUNNING'"),
        ),
        # Health finds the actions held for a person, oldest first, without a table scan.
        Index(
            "ix_aol_actions_held",
            "updated_at",
            sqlite_where=text("status = 'HELD'"),
            postgresql_where=text("status = 'HELD'"),
        ),
        # Pruning reads finished history oldest first, and only finished history.
        Index(
            "ix_aol_actions_finished",
            "finished_at",
            "id",
            sqlite_where=text(FINISHED_SQL),
            postgresql_where=text(FINISHED_SQL),
        ),
    )


class ExecutionLog(Base):
    """One line of an action's history; several per attempt."""

    __tablename__ = "aol_execution_logs"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(
        ID, ForeignKey("aol_actions.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    ts: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(255))
    artifact_ref: Mapped[str | None] = mapped_column(String(512))
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(
            "level IN ('DEBUG','INFO','WARNING','ERROR','CRITICAL')", name="level"
        ),
    )


class Artifact(Base):
    """Proof artifacts, in the database so any machine can read them; one per action and name."""

    __tablename__ = "aol_artifacts"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(ID, ForeignKey("aol_actions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("action_id", "name", name="uq_aol_artifacts_action_name"),)


class Control(Base):
    """The global switches: exactly one row, id 1, which the schema enforces."""

    __tablename__ = "aol_control"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    killed: Mapped[bool] = mapped_column(Boolean, default=False)
    proof_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]
    #: when a worker last took its turn to prune (on the database's clock), so one worker
    #: prunes per period
    last_pruned_at: Mapped[datetime | None]
    #: counts changes to operators' schedules, so workers re-read them only when it moves
    schedules_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class PrunedKey(Base):
    """The idempotency key of a pruned action, kept longer than the action (AOL_KEY_RETENTION)
    so enqueuing it again returns the old outcome instead of running it again."""

    __tablename__ = "aol_pruned_keys"

    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    action_id: Mapped[int] = mapped_column(ID)
    action_type: Mapped[str] = mapped_column(String(100))
    #: the action's final status when it was pruned
    status: Mapped[str] = mapped_column(String(16))
    finished_at: Mapped[datetime] = mapped_column(index=True)


class Worker(Base):
    """A running (or stopped) worker, so ``aol health`` can tell who is alive."""

    __tablename__ = "aol_workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    versions: Mapped[dict[str, Any]]
    action_types: Mapped[list[str]] = mapped_column(JSONValue)
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime]
    last_heartbeat: Mapped[datetime]
    #: the worker counts as alive until this time unless it heartbeats again
    alive_until: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class ScheduleDefinition(Base):
    """A schedule an operator added (``aol schedules add``); plugins declare theirs in code."""

    __tablename__ = "aol_schedules"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    action_type: Mapped[str] = mapped_column(String(100))
    cron: Mapped[str | None] = mapped_column(String(200))
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    catch_up: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("(cron IS NULL) <> (every_seconds IS NULL)", name="cron_or_every"),
        CheckConstraint("catch_up IN ('latest','all','skip')", name="catch_up"),
    )


class ScheduleState(Base):
    """Where each schedule (plugin or operator) stands. Every slot up to ``covered_until`` has
    been decided: enqueued or counted in ``missed``. A tick moves ``covered_until`` forward
    only from the value it read, in the transaction that enqueues the slots it covers, so two
    workers ticking at once cannot both enqueue a slot."""

    __tablename__ = "aol_schedule_state"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    covered_until: Mapped[datetime]
    last_slot: Mapped[datetime | None]
    missed: Mapped[int] = mapped_column(Integer, default=0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: why the last slot could not be enqueued (an invalid payload, say); None once one is
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class FlowLimit(Base):
    """An operator's override of an action type's rate limit and concurrency cap
    (``aol limits set``); it replaces what the type's ``ActionSpec`` declares, in every
    worker from its next claim on."""

    __tablename__ = "aol_flow_limits"

    action_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    rate_count: Mapped[int | None] = mapped_column(Integer)
    rate_seconds: Mapped[float | None] = mapped_column(Float)
    concurrency: Mapped[int | None] = mapped_column(Integer)
    key_field: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class FlowStart(Base):
    """One start of an action of a limited type, under its key ('' for a limit on the
    whole type): rate limits count these in their window, caps the ones still RUNNING."""

    __tablename__ = "aol_flow_starts"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    action_type: Mapped[str] = mapped_column(String(100))
    flow_key: Mapped[str] = mapped_column(String(255))
    action_id: Mapped[int] = mapped_column(ID)
    started_at: Mapped[datetime]

    __table_args__ = (Index("ix_aol_flow_starts_window", "action_type", "flow_key",
                            "started_at"),)


# Core (non-ORM) handles on the tables, typed as tables, for the hot paths.
actions_table = cast(Table, Action.__table__)

# The status conditions of the partial indexes, with the statuses as literals: SQLite uses a
# partial index only when the query repeats its WHERE terms, and a bound parameter does not.
IS_CLAIMABLE = actions_table.c.status.in_([literal_column(f"'{s}'") for s in CLAIMABLE])
IS_RUNNING = actions_table.c.status == literal_column(f"'{Status.RUNNING.value}'")
IS_HELD = actions_table.c.status == literal_column(f"'{Status.HELD.value}'")
IS_FINISHED = actions_table.c.status.in_([literal_column(f"'{s}'") for s in FINISHED])
logs_table = cast(Table, ExecutionLog.__table__)
artifacts_table = cast(Table, Artifact.__table__)
control_table = cast(Table, Control.__table__)
workers_table = cast(Table, Worker.__table__)
schedules_table = cast(Table, ScheduleDefinition.__table__)
schedule_state_table = cast(Table, ScheduleState.__table__)
pruned_keys_table = cast(Table, PrunedKey.__table__)
flow_limits_table = cast(Table, FlowLimit.__table__)
flow_starts_table = cast(Table, FlowStart.__table__)
