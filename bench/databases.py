"""Fresh databases for each measurement: a new SQLite file, or a re-created PostgreSQL database.

A :class:`Target` knows one database kind; :meth:`Target.fresh` throws away what the last
measurement left and returns a :class:`Fresh` database with AOL's schema at head.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import make_url

from aol_core import create_engine
from aol_core.schema import upgrade

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
#: one per benchmark process: several people benchmarking on one server must not drop each
#: other's database
PG_DATABASE = f"aol_bench_{os.getpid()}"
KINDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Fresh:
    """One empty database with AOL's tables: ``url`` for AOL, ``raw`` for the DB-API."""

    kind: str
    url: str
    #: SQLite: the file path; PostgreSQL: a libpq connection string
    raw: str
    workdir: Path


@dataclass
class Target:
    kind: str
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aol-bench-")))
    _count: int = 0

    def fresh(self) -> Fresh:
        """Drop the previous database and create an empty one with AOL's schema."""
        self._count += 1
        workdir = self.tmp / f"m{self._count:03d}"
        workdir.mkdir()
        if self.kind == "sqlite":
            path = workdir / "aol.db"
            url, raw = f"sqlite:///{path}", str(path)
        else:
            url = self._recreate_pg()
            raw = make_url(url).set(drivername="postgresql").render_as_string(
                hide_password=False)
        engine = create_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return Fresh(self.kind, url, raw, workdir)

    def version(self) -> str:
        if self.kind == "sqlite":
            return sqlite3.sqlite_version
        import psycopg

        with psycopg.connect(self._admin(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def cleanup(self) -> None:
        if self.kind == "postgresql":
            self._drop_pg()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _admin(self) -> str:
        return make_url(self.pg_admin_url).set(drivername="postgresql").render_as_string(
            hide_password=False)

    def _recreate_pg(self) -> str:
        import psycopg

        self._drop_pg()
        with psycopg.connect(self._admin(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        admin = make_url(self.pg_admin_url)
        return admin.set(drivername="postgresql+psycopg", database=PG_DATABASE).render_as_string(
            hide_password=False)

    def _drop_pg(self) -> None:
        import psycopg

        with psycopg.connect(self._admin(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for worker processes: default settings, only the bench plugin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOL_")}
    env["AOL_PLUGINS"] = "aol-bench-plugin"
    env.update(extra or {})
    return env
