"""CHECK constraints carry the names the models give them, in new databases and in those
created before revision 0001 named them right (it doubled them: ck_aol_actions_ck_aol_...)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from alembic import command
from sqlalchemy import CheckConstraint, Engine, insert, inspect

from aol_core import schema, utcnow
from aol_core.compat import ActionQueue
from aol_core.db import create_engine, session_factory
from aol_core.models import Base, actions_table, logs_table

MIGRATIONS = Path(schema.__file__).parent / "migrations" / "versions"


def model_checks() -> dict[str, set[str]]:
    return {
        table.name: {str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)}
        for table in Base.metadata.sorted_tables
    }


def database_checks(engine: Engine) -> dict[str, set[str]]:
    inspector = inspect(engine)
    present = set(inspector.get_table_names())
    return {table: {str(c["name"]) for c in inspector.get_check_constraints(table)}
            for table in model_checks() if table in present}


def migration_0003() -> ModuleType:
    (path,) = MIGRATIONS.glob("0003_*.py")
    spec = importlib.util.spec_from_file_location("migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def created_by_the_old_0001(aol_database_url: str) -> Iterator[Engine]:
    """A database at revision 0001 whose CHECKs have the doubled names 0001 used to give."""
    engine = create_engine(aol_database_url)
    config = schema._config()
    renames = migration_0003()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        for table, names in renames.CHECKS.items():
            for name in names:
                renames._rename(conn, table, name, f"ck_{table}_{name}")
    yield engine
    engine.dispose()


def test_a_new_database_names_its_checks_as_the_models_do(engine: Engine) -> None:
    assert database_checks(engine) == model_checks()


def test_upgrading_an_old_database_renames_its_checks_and_keeps_its_rows(
    created_by_the_old_0001: Engine,
) -> None:
    engine = created_by_the_old_0001
    assert "ck_aol_actions_ck_aol_actions_status" in database_checks(engine)["aol_actions"]
    now = utcnow()
    with engine.begin() as conn:  # revision 0001's columns only: today's enqueue writes more
        done_id = conn.execute(insert(actions_table).values(
            action_type="ANY", payload={}, idempotency_key="kept", status="PENDING",
            priority=0, attempts=0, max_attempts=3, not_before=now, fencing_token=0,
            proof_mode=False, created_at=now, updated_at=now,
        ).returning(actions_table.c.id)).scalar_one()
        conn.execute(insert(logs_table).values(action_id=done_id, attempt=0, ts=now,
                                               level="INFO", message="kept"))
    schema.upgrade(engine)
    assert database_checks(engine) == model_checks()
    with session_factory(engine)() as session:
        assert ActionQueue.mark_success(session, done_id) is not None
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM aol_execution_logs").scalar() == 2
