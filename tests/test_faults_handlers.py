"""The fault suite, part 1: handlers written to break AOL's promise, run in this process.

Nothing lost, nothing run twice outside the actions in flight, every bad input a one-line
error: these tests hold AOL to that against the ``aol-hostile-actions`` plugin
(tests/plugins/), on SQLite and PostgreSQL. A handler's transaction is either run alone
(``ActionHarness``) or shared with fast neighbours (a ``--burst`` worker in this process,
which batches handlers it has seen to be fast whose types declare ``share_transaction``, as
the plugin's database-only types do), since a fault must be contained in both.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aol_hostile_actions import HIDDEN_WRITES, PRAGMA_MARK, rows  # type: ignore[import-untyped]
from sqlalchemy import Engine, select, text

from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.models import Status
from aol_core.plugins import PluginRegistry, load_plugins
from aol_core.testing import ActionHarness
from aol_core.worker import Worker, WorkerOptions

HOSTILE_PLUGIN = "aol-hostile-actions"
#: the longest an in-process burst worker may take to drain a test's few actions
DRAIN_DEADLINE = 30.0

pytestmark = pytest.mark.slow

@pytest.fixture
def hostile_registry(monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    monkeypatch.setenv("AOL_PLUGINS", HOSTILE_PLUGIN)
    return load_plugins(Settings(plugins=(HOSTILE_PLUGIN,)))


@pytest.fixture
def hostile(db_url: str, hostile_registry: PluginRegistry) -> Iterator[ActionHarness]:
    """A harness on a fresh database with the hostile plugin's types and tables."""
    settings = Settings(database_url=db_url, retry_base_seconds=0, plugins=(HOSTILE_PLUGIN,))
    harness = ActionHarness(db_url, registry=hostile_registry, settings=settings)
    yield harness
    harness.close()


@pytest.fixture
def effects(tmp_path: Path) -> Path:
    """The file hostile handlers append to for each run: an effect no rollback takes back."""
    return tmp_path / "effects.log"


def dialect(harness: ActionHarness) -> str:
    return harness.engine.dialect.name


def drain_in_shared_transactions(harness: ActionHarness) -> None:
    """Run everything due with a ``--burst`` worker in this process, which gives handlers it
    has seen to be fast a transaction shared with their neighbours."""
    worker = Worker(harness.engine, harness.registry, harness.settings,
                    WorkerOptions(name="hostile-burst", burst=True))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    thread.join(DRAIN_DEADLINE)
    if thread.is_alive():
        worker.request_stop("test deadline")
        thread.join(30)
        pytest.fail(f"the burst worker did not drain the queue within {DRAIN_DEADLINE:.0f} s")


def committed_tags(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [(r.action_id, r.tag) for r in conn.execute(select(rows).order_by(rows.c.id))]


def runs_per_action(effects: Path) -> Counter[int]:
    """How many times each action's handler really ran (lines in the effects file)."""
    if not effects.exists():
        return Counter()
    return Counter(int(line.split()[0]) for line in effects.read_text().splitlines())


def user_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("PRAGMA user_version")).scalar_one())


def one_line(message: str | None) -> bool:
    return bool(message) and "\n" not in str(message)


ALL_HIDDEN = sorted({how for ways in HIDDEN_WRITES.values() for how in ways})


# --- a handler's writes are contained, whatever SQL it sends ----------------------------------


@pytest.mark.parametrize("how", ALL_HIDDEN)
def test_a_hidden_write_of_a_handler_that_then_raises_is_rolled_back(
    how: str, hostile: ActionHarness
) -> None:
    if how not in HIDDEN_WRITES[dialect(hostile)]:
        pytest.skip(f"{dialect(hostile)} has no {how} statement")
    action = hostile.run("HOSTILE_WRITE", {"how": how, "fail": True, "tag": how},
                         max_attempts=1)
    assert action.status == Status.DLQ
    assert action.attempts == 1
    assert committed_tags(hostile.engine) == []
    if how == "pragma":
        assert user_version(hostile.engine) != PRAGMA_MARK


@pytest.mark.parametrize("how", ALL_HIDDEN)
def test_a_hidden_write_of_a_failing_handler_in_a_shared_transaction_is_rolled_back_alone(
    how: str, hostile: ActionHarness, effects: Path
) -> None:
    if how not in HIDDEN_WRITES[dialect(hostile)]:
        pytest.skip(f"{dialect(hostile)} has no {how} statement")
    plain = {"how": "plain", "effects": str(effects)}
    warm_up = [hostile.enqueue("HOSTILE_WRITE", {**plain, "tag": f"warm-{i}"}) for i in range(5)]
    mixed: list[int] = []
    failing: list[int] = []
    for i in range(5):
        mixed.append(hostile.enqueue("HOSTILE_WRITE", {**plain, "tag": f"before-{i}"}))
        failing.append(hostile.enqueue(
            "HOSTILE_WRITE", {"how": how, "fail": True, "tag": f"hidden-{i}",
                              "effects": str(effects)}, max_attempts=1))
        mixed.append(hostile.enqueue("HOSTILE_WRITE", {**plain, "tag": f"after-{i}"}))

    drain_in_shared_transactions(hostile)

    committed = committed_tags(hostile.engine)
    assert not [tag for _, tag in committed if tag.startswith("hidden")], committed
    assert Counter(a for a, _ in committed) == Counter(warm_up + mixed)
    for action_id in failing:
        assert hostile.action(action_id).status == Status.DLQ
    for action_id in warm_up + mixed:
        assert hostile.action(action_id).status == Status.SUCCESS
    if how == "pragma":
        assert user_version(hostile.engine) != PRAGMA_MARK
    # a neighbour's failure never makes a handler that succeeded run again
    assert set(runs_per_action(effects).values()) == {1}


@pytest.mark.parametrize("spoiler", ["HOSTILE_EXPUNGE", "HOSTILE_ROLLBACK"])
def test_a_handler_cannot_discard_its_neighbours_pending_writes(
    spoiler: str, hostile: ActionHarness, effects: Path
) -> None:
    add = {"effects": str(effects)}
    adders = [hostile.enqueue("HOSTILE_ADD", {**add, "tag": f"warm-{i}"}) for i in range(5)]
    for i in range(10):
        adders.append(hostile.enqueue("HOSTILE_ADD", {**add, "tag": f"add-{i}"}))
        hostile.enqueue(spoiler, {**add, "tag": f"spoil-{i}"}, max_attempts=1)

    drain_in_shared_transactions(hostile)

    # every ADD recorded SUCCESS has its row, once, and ran once
    assert Counter(a for a, _ in committed_tags(hostile.engine)) == Counter(adders)
    for action_id in adders:
        assert hostile.action(action_id).status == Status.SUCCESS
    ran = runs_per_action(effects)
    assert {ran[a] for a in adders} == {1}


# --- outcomes that cannot be stored ---------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_result_holding_nan_or_infinity_fails_once_with_a_clear_error(
    value: str, hostile: ActionHarness
) -> None:
    action = hostile.run("HOSTILE_NAN", {"value": value}, max_attempts=5)
    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert one_line(action.last_error) and "result" in str(action.last_error).lower()
    assert action.result is None


def test_a_log_line_with_a_nul_character_is_stored_escaped(hostile: ActionHarness) -> None:
    action = hostile.run("HOSTILE_NUL", {"where": "log"}, max_attempts=5)
    assert action.status == Status.SUCCESS
    assert action.attempts == 1
    [line] = [e.message for e in hostile.logs(action.id) if "before" in e.message]
    assert "\x00" not in line and "after" in line


def test_an_error_with_a_nul_character_is_recorded_once_escaped(hostile: ActionHarness) -> None:
    action = hostile.run("HOSTILE_NUL", {"where": "raise"}, max_attempts=1)
    assert action.status == Status.DLQ
    assert action.attempts == 1
    assert "\x00" not in str(action.last_error) and "in the error" in str(action.last_error)
    assert all("\x00" not in e.message for e in hostile.logs(action.id))


def test_a_result_with_a_nul_character_fails_once_with_a_clear_error(
    hostile: ActionHarness
) -> None:
    action = hostile.run("HOSTILE_NUL", {"where": "result"}, max_attempts=5)
    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert one_line(action.last_error) and "result" in str(action.last_error).lower()


def test_a_huge_result_fails_once_naming_the_limit(hostile: ActionHarness) -> None:
    action = hostile.run("HOSTILE_HUGE", {"where": "result", "mb": 20}, max_attempts=5)
    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert one_line(action.last_error) and "result" in str(action.last_error).lower()
    assert len(str(action.last_error)) < 10_000


@pytest.mark.parametrize("where", ["log", "raise"])
def test_a_huge_log_line_or_error_is_stored_capped(where: str, hostile: ActionHarness) -> None:
    action = hostile.run("HOSTILE_HUGE", {"where": where, "mb": 20}, max_attempts=1)
    assert action.attempts == 1
    assert action.status == (Status.SUCCESS if where == "log" else Status.DLQ)
    assert len(action.last_error or "") < 1024 * 1024
    longest = max(len(e.message) for e in hostile.logs(action.id))
    assert longest < 1024 * 1024


# --- database errors name what failed, never the values ---------------------------------------

#: a value only the payload holds: no stored error or log line may quote it
SECRET = "s3cret-payload-value"
#: the error each violation is recorded with, per database: the server's primary message
#: (constraint and table names kept, quoted values replaced) and its error code
VIOLATION_ERRORS = {
    ("unique", "postgresql"): 'IntegrityError: duplicate key value violates unique '
                              'constraint "hostile_values_unique" (SQLSTATE 23505)',
    ("unique", "sqlite"): "IntegrityError: UNIQUE constraint failed: hostile_values.value "
                          "(SQLITE_CONSTRAINT_UNIQUE)",
    ("check", "postgresql"): 'IntegrityError: new row for relation "hostile_values" violates '
                             'check constraint "hostile_values_short" (SQLSTATE 23514)',
    ("check", "sqlite"): "IntegrityError: CHECK constraint failed: hostile_values_short "
                         "(SQLITE_CONSTRAINT_CHECK)",
    ("convert", "postgresql"): 'DataError: invalid input syntax for type integer: "…" '
                               "(SQLSTATE 22P02)",
}


@pytest.mark.parametrize("violation", ["unique", "check", "convert"])
def test_a_database_error_in_a_handler_is_recorded_without_the_values_it_quotes(
    violation: str, hostile: ActionHarness
) -> None:
    if (violation, dialect(hostile)) not in VIOLATION_ERRORS:
        pytest.skip("SQLite converts any text to an integer without an error")
    action = hostile.run("HOSTILE_VIOLATION", {"violate": violation, "secret": SECRET},
                         max_attempts=1)
    assert action.status == Status.DLQ
    assert action.last_error == VIOLATION_ERRORS[violation, dialect(hostile)]
    messages = [e.message for e in hostile.logs(action.id)]
    assert any(action.last_error in message for message in messages)
    assert not [message for message in messages if SECRET in message]


# --- plugin API traps -------------------------------------------------------------------------


def test_a_handler_declaring_context_none_gets_its_context_or_fails_at_load_naming_it(
    db_url: str, hostile_registry: PluginRegistry
) -> None:
    [entry] = [p for p in hostile_registry.plugins if "context_none" in p.entry_point]
    if entry.status == "broken":  # the other outcome the issue allows: refused at load
        assert "context" in str(entry.error), entry.error
        return
    harness = ActionHarness(db_url, registry=hostile_registry,
                            settings=Settings(database_url=db_url, retry_base_seconds=0))
    try:
        action = harness.run("HOSTILE_CONTEXT_NONE", {})
    finally:
        harness.close()
    assert action.status == Status.SUCCESS, action.last_error
    assert action.result == {"action_id": action.id, "attempt": 1}


# --- one bad row never stops the queue --------------------------------------------------------


def test_a_row_that_cannot_be_decoded_fails_alone_and_the_queue_goes_on(
    hostile: ActionHarness, db_url: str
) -> None:
    poison = hostile.enqueue("HOSTILE_ADD", {"tag": "poison"})
    after = [hostile.enqueue("HOSTILE_ADD", {"tag": f"after-{i}"}) for i in range(3)]
    deep = "[" * 5_000 + "]" * 5_000  # deeper than Python's JSON decoder goes
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:  # written around enqueue, as by hand or an old version
            value = ":deep" if engine.dialect.name == "sqlite" else "CAST(:deep AS jsonb)"
            conn.execute(text(f"UPDATE aol_actions SET payload = {value} WHERE id = :id"),
                         {"deep": deep, "id": poison})
    except Exception as exc:  # a database that refuses to store it cannot be poisoned by it
        pytest.skip(f"{engine.dialect.name} refuses the poison row: {type(exc).__name__}")
    finally:
        engine.dispose()

    drain_in_shared_transactions(hostile)

    for action_id in after:
        assert hostile.action(action_id).status == Status.SUCCESS
    with hostile.engine.connect() as conn:
        status, error = conn.execute(text(
            "SELECT status, last_error FROM aol_actions WHERE id = :id"), {"id": poison}).one()
    assert status == Status.FAILED.value
    assert one_line(error)

