"""The plugin's tables: one row per publication (its intent, then its remote id and URL), and
the Bluesky sessions.

Every write here goes through its own short transaction on a connection of its own, never the
handler's session: the intent must be committed before the one network call that creates the
post, and must survive the handler's rollback when that call fails. ``aol db upgrade``
creates the tables through the plugin's migrations (``aol_migrations``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from aol_core import NAMING_CONVENTION, UTCDateTime, utcnow
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

publications = sa.Table(
    "aol_social_publications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    #: the action's idempotency key: one publication per action, whatever its attempts
    sa.Column("idempotency_key", sa.String(255), nullable=False, unique=True),
    sa.Column("action_id", sa.Integer, nullable=False),
    sa.Column("account", sa.String(100), nullable=False),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    #: what the platform deduplicates on, fixed at the first intent (a Bluesky record key)
    sa.Column("remote_key", sa.String(100), nullable=False),
    sa.Column("remote_id", sa.String(500)),
    sa.Column("url", sa.String(1000)),
    #: create calls sent so far
    sa.Column("sends", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

bluesky_sessions = sa.Table(
    "aol_social_bluesky_sessions",
    metadata,
    sa.Column("account", sa.String(100), primary_key=True),
    sa.Column("did", sa.String(200)),
    sa.Column("access_jwt", sa.Text),
    sa.Column("refresh_jwt", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


class State(StrEnum):
    """Where a publication stands. Only SENDING is uncertain: a create call may have reached
    the platform without its answer reaching us."""

    NEW = "new"  # intent recorded, no create call sent yet
    SENDING = "sending"  # a create call is (or was) in flight: the post may exist
    UNSENT = "unsent"  # the platform answered that it did not create the post
    HELD = "held"  # handed to a person; their retry is their decision to send again
    PUBLISHED = "published"


@dataclass(frozen=True)
class Publication:
    idempotency_key: str
    account: str
    provider: str
    state: State
    remote_key: str
    remote_id: str | None
    url: str | None
    sends: int
    created_at: datetime
    updated_at: datetime


def open_intent(
    engine: Engine, *, idempotency_key: str, action_id: int, account: str, provider: str,
    remote_key: str,
) -> Publication:
    """The action's publication, recorded as NEW (and committed) if it has none yet."""
    now = utcnow()
    try:
        with engine.begin() as conn:
            conn.execute(publications.insert().values(
                idempotency_key=idempotency_key, action_id=action_id, account=account,
                provider=provider, state=State.NEW.value, remote_key=remote_key, sends=0,
                created_at=now, updated_at=now,
            ))
    except IntegrityError:
        pass  # recorded by an earlier attempt (or a racing one): the stored row wins
    found = find(engine, idempotency_key)
    assert found is not None
    return found


def find(engine: Engine, idempotency_key: str) -> Publication | None:
    with engine.connect() as conn:
        return _read(conn, idempotency_key)


def _read(conn: Connection, idempotency_key: str) -> Publication | None:
    row = conn.execute(
        sa.select(publications).where(publications.c.idempotency_key == idempotency_key)
    ).mappings().first()
    if row is None:
        return None
    return Publication(
        row["idempotency_key"], row["account"], row["provider"], State(row["state"]),
        row["remote_key"], row["remote_id"], row["url"], row["sends"], row["created_at"],
        row["updated_at"],
    )


def mark_sending(engine: Engine, idempotency_key: str) -> None:
    """Committed before the create call: from here on the post may exist."""
    with engine.begin() as conn:
        conn.execute(publications.update()
                     .where(publications.c.idempotency_key == idempotency_key)
                     .values(state=State.SENDING.value, sends=publications.c.sends + 1,
                             updated_at=utcnow()))


def mark(engine: Engine, idempotency_key: str, state: State) -> None:
    with engine.begin() as conn:
        conn.execute(publications.update()
                     .where(publications.c.idempotency_key == idempotency_key)
                     .values(state=state.value, updated_at=utcnow()))


def mark_published(engine: Engine, idempotency_key: str, remote_id: str, url: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(publications.update()
                     .where(publications.c.idempotency_key == idempotency_key)
                     .values(state=State.PUBLISHED.value, remote_id=remote_id, url=url,
                             updated_at=utcnow()))


@dataclass(frozen=True)
class StoredSession:
    """A Bluesky session as the PDS last handed it out (empty tokens: never logged in)."""

    did: str | None
    access_jwt: str | None
    refresh_jwt: str | None


def load_session(engine: Engine, account: str) -> StoredSession:
    with engine.connect() as conn:
        return _read_session(conn, account)


def _read_session(conn: Connection, account: str) -> StoredSession:
    row = conn.execute(
        sa.select(bluesky_sessions).where(bluesky_sessions.c.account == account)
    ).mappings().first()
    if row is None:
        return StoredSession(None, None, None)
    return StoredSession(row["did"], row["access_jwt"], row["refresh_jwt"])


@contextmanager
def session_lock(engine: Engine, account: str) -> Iterator[SessionLock]:
    """Hold the account's session row for one login or refresh, across workers.

    An UPDATE takes the row's lock on PostgreSQL and the write lock on SQLite, so a second
    worker waits here and then reads the tokens the first one stored instead of spending the
    rotated refresh token again (the PDS would refuse it) or logging in once more.
    """
    try:
        with engine.begin() as conn:
            conn.execute(bluesky_sessions.insert().values(account=account, updated_at=utcnow()))
    except IntegrityError:
        pass
    with engine.begin() as conn:
        conn.execute(bluesky_sessions.update().where(bluesky_sessions.c.account == account)
                     .values(updated_at=utcnow()))
        yield SessionLock(conn, account, _read_session(conn, account))


@dataclass(frozen=True)
class SessionLock:
    conn: Connection
    account: str
    current: StoredSession

    def save(self, session: StoredSession) -> None:
        """Store the new tokens; they commit when the lock is released."""
        self.conn.execute(
            bluesky_sessions.update().where(bluesky_sessions.c.account == self.account)
            .values(did=session.did, access_jwt=session.access_jwt,
                    refresh_jwt=session.refresh_jwt, updated_at=utcnow()))
