"""A test kit for plugin authors: a harness that runs actions through the real dispatch path,
a contract base class whose inherited tests every handler should pass, loopback HTTP servers
(``FakeEndpoint``, and ``FakeServer`` to fake a whole service), a network guard, a fixed
clock and a check that a plugin's migrations create its models.

With ``aol-core`` installed, pytest offers the fixtures automatically (``aol_harness``,
``aol_database_url``, ``aol_no_network``, ``aol_clock``; see docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import func, select, table, update
from sqlalchemy.orm import Session

from aol_core import queue, schema
from aol_core.config import Settings
from aol_core.db import create_engine, session_factory
from aol_core.dispatch import Dispatcher, Outcome
from aol_core.drivers import driver_for
from aol_core.models import Action, Artifact, ExecutionLog, Status
from aol_core.plugins import PluginRegistry, load_plugins
from aol_core.testing.clock import FixedClock
from aol_core.testing.endpoint import FakeEndpoint, FakeServer, Received, Reply, reply_json
from aol_core.testing.migrations import assert_migrations_match_models
from aol_core.testing.network import NetworkGuard, NetworkUsed
from aol_core.timeutil import utcnow

__all__ = [
    "ActionHarness", "FakeEndpoint", "FakeServer", "FixedClock", "HandlerContract",
    "NetworkGuard", "NetworkUsed", "Received", "Reply", "assert_migrations_match_models",
    "reply_json",
]


class ActionHarness:
    """A real database with AOL's and the plugins' tables, and a synchronous worker."""

    def __init__(
        self,
        database_url: str,
        registry: PluginRegistry | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings(database_url=database_url, retry_base_seconds=0)
        self.registry = registry or load_plugins(self.settings)
        self.engine = create_engine(database_url)
        schema.upgrade(self.engine, self.registry)
        self.sessions = session_factory(self.engine)
        self.dispatcher = Dispatcher(self.engine, self.registry, self.settings, "test-worker")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction that commits on leaving the block."""
        with self.sessions() as session, session.begin():
            yield session

    def enqueue(self, action_type: str, payload: dict[str, Any], **options: Any) -> int:
        force = options.pop("force", False)
        item = queue.NewAction(action_type, payload, **options)
        with self.session() as session:
            (done,) = queue.enqueue_many(
                session, [item], force=force, catalog=self.registry, settings=self.settings
            )
            return done.id

    def run_due(self, proof_mode: bool = False, limit: int = 100,
                action_types: Sequence[str] | None = None) -> list[Outcome]:
        """Claim every due action this registry can run (or of ``action_types``) and dispatch
        each, in claim order."""
        claims = driver_for(self.engine).claim(
            self.engine, worker="test-worker",
            action_types=sorted(self.registry.routes) if action_types is None else action_types,
            limit=limit, lease_seconds=self.settings.lease_seconds, now=utcnow(),
        )
        return [self.dispatcher.run(claim, proof_mode or claim.proof_mode) for claim in claims]

    def run(self, action_type: str, payload: dict[str, Any], proof_mode: bool = False,
            *, only_this_type: bool = False, **options: Any) -> Action:
        """Enqueue one action, run what is due, and return that action as stored.

        ``only_this_type`` leaves other types due (such as follow-ups the handler enqueued)
        for the test to inspect.
        """
        action_id = self.enqueue(action_type, payload, **options)
        self.run_due(proof_mode, action_types=[action_type] if only_this_type else None)
        return self.action(action_id)

    def action(self, action_id: int) -> Action:
        with self.sessions() as session:
            action = session.get(Action, action_id)
            assert action is not None, f"no action {action_id}"
            return action

    def logs(self, action_id: int) -> list[ExecutionLog]:
        with self.sessions() as session:
            return list(session.scalars(
                select(ExecutionLog).where(ExecutionLog.action_id == action_id)
                .order_by(ExecutionLog.id)))

    def artifacts(self, action_id: int) -> list[Artifact]:
        with self.sessions() as session:
            return list(session.scalars(
                select(Artifact).where(Artifact.action_id == action_id).order_by(Artifact.name)))

    def rerun(self, action_id: int, proof_mode: bool = False) -> Action:
        """Run a finished action again, as a worker would after crashing between the
        handler's outside effect and the commit of its outcome."""
        with self.session() as session:
            session.execute(update(Action).where(Action.id == action_id).values(
                status=Status.PENDING, not_before=utcnow(), finished_at=None))
        self.run_due(proof_mode, action_types=[self.action(action_id).action_type])
        return self.action(action_id)

    def row_counts(self) -> dict[str, int]:
        """Rows in every table of the loaded plugins, and actions and artifacts: what a
        handler's effect inside the database shows up in."""
        names = {"aol_actions", "aol_artifacts"}
        names |= {name for plugin in self.registry.loaded for name in self.registry.tables(plugin)}
        with self.engine.connect() as conn:
            return {name: int(conn.scalar(select(func.count()).select_from(table(name))) or 0)
                    for name in sorted(names)}

    def close(self) -> None:
        self.engine.dispose()


class HandlerContract:
    """Subclass in a plugin's tests, set the class attributes, and inherit these checks.

    The checks use the ``aol_harness`` fixture (the pytest plugin provides it). When the valid
    payload needs rows to exist (a campaign, a customer), override ``prepare`` to create them.
    Returned from the ``aol_handler_contracts`` hook, the same class also drives ``aol plugins
    check`` (which calls ``prepare`` and runs the payloads without pytest).
    """

    action_type: ClassVar[str]
    #: a payload that succeeds in proof mode on an empty database (after ``prepare``)
    valid_payload: ClassVar[dict[str, Any]]
    #: a payload the declared schema refuses
    invalid_payload: ClassVar[dict[str, Any]]
    #: False for a handler whose proof run has nothing to show (it only reads)
    proof_records_an_artifact: ClassVar[bool] = True
    #: a payload the schema accepts but the handler must refuse for good (PermanentError):
    #: it fails on its first attempt and is not retried. Run for real, network refused.
    permanent_failure_payload: ClassVar[dict[str, Any] | None] = None
    #: a payload whose run fails in a way a later attempt can fix (RetryableError, or an
    #: outside service that cannot be reached: the network is refused): it is retried.
    retryable_failure_payload: ClassVar[dict[str, Any] | None] = None

    def prepare(self, harness: ActionHarness) -> None:
        """Create what ``valid_payload`` needs in the harness's empty database (nothing
        by default); called before every check."""

    def test_type_is_declared_by_exactly_one_installed_plugin(
        self, aol_harness: ActionHarness
    ) -> None:
        assert self.action_type in aol_harness.registry.routes
        assert not aol_harness.registry.conflicts

    def test_valid_payload_succeeds_in_proof_mode(self, aol_harness: ActionHarness) -> None:
        self.prepare(aol_harness)
        action = aol_harness.run(self.action_type, self.valid_payload, proof_mode=True)
        assert action.status == Status.SUCCESS, action.last_error

    def test_invalid_payload_is_refused_at_enqueue(self, aol_harness: ActionHarness) -> None:
        import pytest

        from aol_core.errors import InvalidPayload

        self.prepare(aol_harness)
        with pytest.raises(InvalidPayload):
            aol_harness.enqueue(self.action_type, self.invalid_payload)

    def test_invalid_payload_fails_permanently_at_dispatch(
        self, aol_harness: ActionHarness
    ) -> None:
        # Enqueue validation guards the front door; a row written around it must still fail
        # once, permanently, when the worker re-checks the schema.
        self.prepare(aol_harness)
        with aol_harness.session() as session:
            row = queue.enqueue(session, self.action_type, self.valid_payload, max_attempts=5)
            session.get(Action, row.id).payload = self.invalid_payload  # type: ignore[union-attr]
        aol_harness.run_due(proof_mode=True)
        action = aol_harness.action(row.id)
        assert action.status == Status.FAILED
        assert action.attempts == 1

    def test_proof_mode_opens_no_network_connection(self, aol_harness: ActionHarness) -> None:
        self.prepare(aol_harness)
        guard = NetworkGuard()
        with guard.active():
            action = aol_harness.run(self.action_type, self.valid_payload, proof_mode=True)
        assert guard.attempts == [], f"proof mode connected to {guard.attempts}"
        assert action.status == Status.SUCCESS, action.last_error

    def test_proof_mode_records_an_artifact(self, aol_harness: ActionHarness) -> None:
        if not self.proof_records_an_artifact:
            import pytest

            pytest.skip("proof_records_an_artifact = False")
        self.prepare(aol_harness)
        action = aol_harness.run(self.action_type, self.valid_payload, proof_mode=True)
        assert aol_harness.artifacts(action.id), "the proof run recorded no artifact"

    def test_a_second_run_of_the_same_action_has_no_second_effect(
        self, aol_harness: ActionHarness
    ) -> None:
        self.prepare(aol_harness)
        action = aol_harness.run(self.action_type, self.valid_payload, proof_mode=True,
                                 only_this_type=True)
        assert action.status == Status.SUCCESS, action.last_error
        before = aol_harness.row_counts()
        again = aol_harness.rerun(action.id, proof_mode=True)
        assert again.status == Status.SUCCESS, again.last_error
        assert aol_harness.row_counts() == before

    def test_a_permanent_failure_fails_once_without_retry(
        self, aol_harness: ActionHarness
    ) -> None:
        self._skip_unless_declared("permanent_failure_payload")
        self.prepare(aol_harness)
        action = self.run_failing(aol_harness, self.permanent_failure_payload or {})
        assert (action.status, action.attempts) == (Status.FAILED, 1), action.last_error

    def test_a_retryable_failure_is_retried(self, aol_harness: ActionHarness) -> None:
        self._skip_unless_declared("retryable_failure_payload")
        self.prepare(aol_harness)
        action = self.run_failing(aol_harness, self.retryable_failure_payload or {})
        assert (action.status, action.attempts) == (Status.RETRY, 1), action.last_error

    def run_failing(self, harness: ActionHarness, payload: dict[str, Any]) -> Action:
        """One real attempt (of up to three) at ``payload`` with every network connection
        refused, as the failure checks make it; returns the action as stored."""
        with NetworkGuard().active():
            return harness.run(self.action_type, payload, max_attempts=3, only_this_type=True)

    def _skip_unless_declared(self, attribute: str) -> None:
        if getattr(self, attribute) is None:
            import pytest

            pytest.skip(f"{type(self).__name__} declares no {attribute}")
