"""Worker processes, run exactly as an operator would, and what /proc says about them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from aol_core import create_engine
from bench.databases import Fresh, worker_env

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: longest any one worker run may take before the benchmark gives up on it
WORKER_TIMEOUT = 3600.0


class WorkerFailed(RuntimeError):
    pass


def start_worker(db: Fresh, *, burst: bool, tag: str) -> subprocess.Popen[bytes]:
    """``python -m aol_core.cli --db URL worker [--burst]`` with default settings.

    Its log (INFO, the default) goes to a file in the measurement's directory.
    """
    command = [sys.executable, "-m", "aol_core.cli", "--db", db.url, "worker"]
    if burst:
        command.append("--burst")
    log = (db.workdir / f"worker-{tag}.log").open("wb")
    try:
        return subprocess.Popen(command, env=worker_env(), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def burst(db: Fresh, workers: int = 1) -> float:
    """Start ``workers`` burst workers together; seconds from start until the last exits."""
    started = time.perf_counter()
    processes = [start_worker(db, burst=True, tag=f"burst{i}") for i in range(workers)]
    for i, process in enumerate(processes):
        wait(db, process, f"burst{i}")
    return time.perf_counter() - started


def wait(db: Fresh, process: subprocess.Popen[bytes], tag: str,
         timeout: float = WORKER_TIMEOUT) -> None:
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise WorkerFailed(f"worker {tag} still running after {timeout:.0f} s") from None
    if code != 0:
        raise WorkerFailed(f"worker {tag} exited with {code}: {log_tail(db, tag)}")


def stop(db: Fresh, process: subprocess.Popen[bytes], tag: str) -> None:
    """SIGTERM, as an operator stops a worker, and wait for a clean exit."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    wait(db, process, tag, timeout=60)


def log_tail(db: Fresh, tag: str, lines: int = 15) -> str:
    path = db.workdir / f"worker-{tag}.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_registered(db: Fresh, processes: list[subprocess.Popen[bytes]],
                    timeout: float = 60) -> None:
    """Block until every process has registered as a live worker (so it is claiming)."""
    engine = create_engine(db.url)
    deadline = time.monotonic() + timeout
    pids = {p.pid for p in processes}
    try:
        while time.monotonic() < deadline:
            for process in processes:
                if process.poll() is not None:
                    raise WorkerFailed(f"worker {process.pid} exited with {process.returncode}")
            with engine.connect() as conn:
                live = set(conn.execute(
                    text("SELECT pid FROM aol_workers WHERE stopped_at IS NULL")).scalars())
            if pids <= live:
                return
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise WorkerFailed(f"workers {sorted(pids)} did not register within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def rss_mib(pid: int) -> float:
    """VmRSS from /proc/<pid>/status, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise WorkerFailed(f"no VmRSS for process {pid}")
