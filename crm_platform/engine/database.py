"""Connecting to the database, the unit of work, ids and the clock."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import simplejson
import sqlalchemy as sa

#: Set on a connection's ``info`` just before a write transaction begins (SQLite: BEGIN IMMEDIATE).
WRITE = "crm_write"


def make_engine(url: str, **kwargs) -> sa.Engine:
    """An Engine for ``url``.

    PostgreSQL: connections are pinged when checked out, so a pool whose connections the server
    dropped (restart, ``pg_terminate_backend``, failover) heals on the next request instead of
    answering it with an error. SQLite: WAL, a busy timeout, enforced foreign keys, and transactions
    begun by us, not by the driver: a write transaction is ``BEGIN IMMEDIATE`` (it takes the write
    lock before its first read, so checks made inside it — duplicates, counters — hold until commit).
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
    # JSON columns (audit changes, multiselects) keep amounts exact, as the API does.
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", _json_loads)
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop(WRITE, False) else "BEGIN")

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            if ":memory:" not in url and url != "sqlite://":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    return engine


def _json_dumps(value) -> str:
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, separators=(",", ":"))


def _json_loads(text: str):
    return simplejson.loads(text, use_decimal=True)


class UnitOfWork:
    """The database as one unit of work sees it: a single pooled connection, checked out on first
    use, for every read and write of the unit (a web request holds at most one connection).

    ``connect()`` gives the connection for reads. ``begin()`` gives it inside a write transaction
    that commits when the outermost ``begin()`` block ends and rolls back if it raises; a ``begin()``
    inside another joins it, so several records written by one unit commit or fail together. With
    ``hold=False`` (a service given a bare Engine) the connection goes back to the pool after each
    outermost block, which is what ``Engine.connect()`` / ``Engine.begin()`` would do.
    """

    def __init__(self, engine: sa.Engine, hold: bool = True):
        self.engine, self.hold = engine, hold
        self._conn: sa.Connection | None = None
        self._uses = 0  # open connect()/begin() blocks: with hold=False the last one to end closes
        self._writing = False

    @classmethod
    def of(cls, db: sa.Engine | UnitOfWork) -> UnitOfWork:
        return db if isinstance(db, UnitOfWork) else cls(db, hold=False)

    @property
    def dialect(self) -> sa.Dialect:
        return self.engine.dialect

    def _connection(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        self._uses += 1
        try:
            yield self._connection()
        finally:
            self._uses -= 1
            if not self.hold and not self._uses:
                self.close()

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        conn = self._connection()
        self._uses += 1
        try:
            if self._writing:  # joins the unit's open write transaction
                yield conn
                return
            if conn.in_transaction() and conn.dialect.name == "sqlite":
                conn.rollback()  # a read snapshot cannot become a write transaction safely: start one
            if not conn.in_transaction():
                conn.info[WRITE] = True
                conn.begin()
            self._writing = True
            try:
                yield conn
            except BaseException:
                self._writing = False
                conn.rollback()
                raise
            self._writing = False
            conn.commit()
        finally:
            self._uses -= 1
            if not self.hold and not self._uses:
                self.close()

    def close(self) -> None:
        """Give the connection back to the pool (an open read transaction is rolled back)."""
        conn, self._conn, self._writing = self._conn, None, False
        if conn is not None:
            conn.close()


def new_id() -> str:
    """A UUIDv7: time-ordered (good for B-tree inserts), random enough that nobody can enumerate ids."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def utcnow() -> datetime:
    return datetime.now(UTC)
