"""Running a worker inside an application's own process: what ``aol worker`` and the
original's ``AOLDaemon`` are built on."""

from __future__ import annotations

import signal
import threading
from contextlib import AbstractContextManager, ExitStack
from types import FrameType

from sqlalchemy import Engine

from aol_core import schema
from aol_core.config import Settings
from aol_core.errors import AOLError
from aol_core.plugins import PluginRegistry, load_plugins
from aol_core.worker import Worker, WorkerOptions

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_worker(
    engine: Engine,
    *,
    burst: bool = False,
    proof_mode: bool = False,
    concurrency: int = 1,
    name: str | None = None,
    settings: Settings | None = None,
    registry: PluginRegistry | None = None,
    allow_broken_plugins: bool = False,
    handle_signals: bool = False,
    http: tuple[str, int] | None = None,
) -> int:
    """Run a worker on ``engine`` in the calling thread until it stops; return its exit code.

    It stops on the kill switch (``aol control kill``), with ``burst`` once nothing is due,
    and with ``handle_signals`` on SIGTERM or SIGINT (main thread only; the previous
    handlers are put back afterwards). Running actions finish within the grace period.
    ``settings`` default to the ``AOL_*`` environment and ``registry`` to the plugins it
    selects. The engine needs ``concurrency + 3`` connections (a runner thread each, the
    claim loop, the heartbeat, a spare): ``create_engine(url, pool_size=concurrency + 3)``.

    With ``http`` (host, port) it serves its own ``/healthz`` and ``/metrics`` there while
    it runs (needs ``aol-core[serve]``; see :mod:`aol_core.worker_http`).

    Raises :class:`~aol_core.errors.SchemaNotCurrent` before ``aol db upgrade`` has run (for
    the core or a plugin it runs) and :class:`~aol_core.errors.PluginError` for conflicting
    (or, unless allowed, broken) plugins.
    """
    settings = settings if settings is not None else Settings.from_env()
    registry = registry if registry is not None else load_plugins(settings)
    schema.require_current(engine, registry)
    worker = Worker(
        engine, registry, settings,
        WorkerOptions(name=name, concurrency=concurrency, proof_mode=proof_mode, burst=burst,
                      allow_broken_plugins=allow_broken_plugins),
    )
    with ExitStack() as serving:
        if http is not None:
            serving.enter_context(_serving(worker, *http))
        if not handle_signals or threading.current_thread() is not threading.main_thread():
            return worker.run()
        return _run_with_signals(worker)


def _serving(worker: Worker, host: str, port: int) -> AbstractContextManager[object]:
    try:
        from aol_core.worker_http import serving
    except ImportError as exc:
        raise AOLError(f"serving a worker's /metrics needs the serve extra ({exc.name} is "
                       "missing): pip install 'aol-core[serve]'") from None
    return serving(worker, host, port)


def _run_with_signals(worker: Worker) -> int:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        worker.signal_stop(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        return worker.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
