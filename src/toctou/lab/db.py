"""Engines, sessions and per-dialect transaction control for the lab.

Each backend needs its own care (see ARCHITECTURE.md and ../shared/reference/databases.md):

* SQLite through Python's ``sqlite3`` (and so ``aiosqlite``) uses *legacy transaction control*:
  the driver emits ``BEGIN`` only before a write, so a ``SELECT`` runs outside any transaction.
  That is what people ship, so the plain engine keeps it. Strategies that need real transactions
  get a second pool in which SQLAlchemy emits ``BEGIN`` itself: ``BEGIN IMMEDIATE`` for the
  pessimistic lock (SQLAlchemy drops ``FOR UPDATE`` on SQLite) and a deferred ``BEGIN`` for
  serializable + retry.
* PostgreSQL runs READ COMMITTED by default; serializable sessions use SERIALIZABLE.
* MariaDB runs REPEATABLE READ; ``innodb_snapshot_isolation`` is pinned OFF on connect, because its
  default changed in 11.6.2 and the lab must behave the same on every server version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = [
    "Backend",
    "Database",
    "DatabaseURLError",
    "is_check_violation",
    "is_retryable",
    "is_unique_violation",
    "normalize_url",
    "open_database",
]

log = logging.getLogger(__name__)

Backend = Literal["sqlite", "postgresql", "mariadb"]
SessionFactory = async_sessionmaker[AsyncSession]

_DRIVERS: dict[str, tuple[Backend, str]] = {
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgresql": ("postgresql", "postgresql+asyncpg"),
    "postgres": ("postgresql", "postgresql+asyncpg"),
    "mysql": ("mariadb", "mysql+asyncmy"),
    "mariadb": ("mariadb", "mysql+asyncmy"),
}
_SQLITE_BUSY_TIMEOUT_S = 30  # Python's 5 s default turns a queue of writers into errors
_INIT_LOCK_KEY = 7_405_226_011  # PostgreSQL advisory lock id for schema creation


class DatabaseURLError(ValueError):
    """The database URL cannot be used by the lab."""


def normalize_url(raw: str) -> tuple[Backend, URL]:
    """Map ``sqlite:///``, ``postgresql://``, ``mysql://``, ``mariadb://`` onto an async driver."""
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise DatabaseURLError(f"not a database URL: {raw!r}") from exc
    scheme = url.get_backend_name()
    if scheme not in _DRIVERS:
        raise DatabaseURLError(
            f"unsupported database {scheme!r}: use sqlite:///path, postgresql://... or mysql://..."
        )
    backend, drivername = _DRIVERS[scheme]
    url = url.set(drivername=drivername)
    if backend == "sqlite" and (not url.database or url.database == ":memory:"):
        raise DatabaseURLError(
            "the lab needs a SQLite file that several workers can share, not :memory:"
        )
    if backend == "mariadb" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return backend, url


@dataclass(frozen=True, slots=True)
class Database:
    """The lab's engines and the session factories that the strategies choose between."""

    backend: Backend
    engine: AsyncEngine
    sessions: SessionFactory
    """Plain sessions: the backend's and driver's defaults, as most applications run."""
    locking_sessions: SessionFactory
    """Sessions in which a locking read really locks (SQLite: ``BEGIN IMMEDIATE``)."""
    serializable_sessions: SessionFactory
    """SERIALIZABLE transactions (SQLite: a real deferred ``BEGIN``)."""
    init_engine: AsyncEngine
    """For schema creation (SQLite: its transactions take the write lock at BEGIN)."""
    _engines: tuple[AsyncEngine, ...]

    async def dispose(self) -> None:
        for engine in self._engines:
            await engine.dispose()

    async def fill_pools(self, count: int) -> None:
        """Open ``count`` connections in every pool now, not under the first burst."""

        async def touch(engine: AsyncEngine) -> None:
            async with engine.connect() as conn:
                await asyncio.sleep(0.05)  # hold it, so the others must open their own
                await conn.rollback()

        await asyncio.gather(*(touch(e) for e in self._engines for _ in range(count)))

    @property
    def server_version(self) -> str | None:
        """The database server's version as the driver reported it on first connect (SQLite:
        the library's); None before any connection was made."""
        info = self.engine.dialect.server_version_info
        return ".".join(str(part) for part in info) if info else None


def _factory(bind: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


def open_database(raw_url: str, *, pool_size: int = 10, max_overflow: int = 0) -> Database:
    """Create the engines for ``raw_url``; nothing connects until first use."""
    backend, url = normalize_url(raw_url)
    pool: dict[str, Any] = {"pool_size": pool_size, "max_overflow": max_overflow}
    if backend == "sqlite":
        connect_args = {"timeout": _SQLITE_BUSY_TIMEOUT_S}
        legacy = create_async_engine(url, connect_args=connect_args, **pool)
        event.listen(legacy.sync_engine, "connect", _sqlite_pragmas)
        explicit = create_async_engine(url, connect_args=connect_args, **pool)
        event.listen(explicit.sync_engine, "connect", _sqlite_explicit_transactions)
        event.listen(explicit.sync_engine, "begin", _sqlite_begin)
        immediate = explicit.execution_options(sqlite_begin="IMMEDIATE")
        return Database(
            backend=backend,
            engine=legacy,
            sessions=_factory(legacy),
            locking_sessions=_factory(immediate),
            serializable_sessions=_factory(explicit.execution_options(sqlite_begin="DEFERRED")),
            init_engine=immediate,
            _engines=(legacy, explicit),
        )
    engine = create_async_engine(url, pool_pre_ping=False, **pool)
    if backend == "mariadb":
        event.listen(engine.sync_engine, "connect", _mariadb_session_variables)
    sessions = _factory(engine)
    return Database(
        backend=backend,
        engine=engine,
        sessions=sessions,
        locking_sessions=sessions,
        serializable_sessions=_factory(engine.execution_options(isolation_level="SERIALIZABLE")),
        init_engine=engine,
        _engines=(engine,),
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_explicit_transactions(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    # Stop the driver from issuing BEGIN itself; the "begin" hook below issues it instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _mariadb_session_variables(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION innodb_snapshot_isolation = OFF")
    except Exception as exc:  # servers before 10.6.18 / 10.11.8 lack the variable: same as OFF
        log.debug("innodb_snapshot_isolation not set: %s", exc)
    finally:
        cursor.close()


async def lock_for_init(conn: AsyncConnection, backend: Backend) -> Callable[[], Any] | None:
    """Serialise schema creation between workers that start at once.

    Returns an async-callable that releases the lock, or None when the transaction holds it.
    """
    if backend == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INIT_LOCK_KEY})
        return None
    if backend == "mariadb":
        # DDL commits implicitly on MariaDB, so no transaction can hold this lock; a named lock can.
        got = (await conn.execute(text("SELECT GET_LOCK('toctou_init', 60)"))).scalar()
        if got != 1:
            raise RuntimeError("timed out waiting for another worker to create the schema")

        async def release() -> None:
            await conn.execute(text("SELECT RELEASE_LOCK('toctou_init')"))

        return release
    # SQLite: the connection began with BEGIN IMMEDIATE, so it holds the write lock already.
    return None


def _error_codes(exc: DBAPIError) -> set[str | int]:
    """Every code the driver attached: SQLSTATE (asyncpg, asyncmy), errno (asyncmy), SQLite name."""
    orig = exc.orig
    codes: set[str | int] = set()
    for attr in ("sqlstate", "pgcode", "sqlite_errorname"):
        code = getattr(orig, attr, None)
        if isinstance(code, str):
            codes.add(code)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        codes.add(args[0])
    return codes


_RETRYABLE: frozenset[str | int] = frozenset(
    {
        "40001",  # PostgreSQL serialization failure
        "40P01",  # PostgreSQL deadlock
        1213,  # MariaDB deadlock
        1205,  # MariaDB lock wait timeout
        1020,  # MariaDB "record has changed since last read" (snapshot isolation)
    }
)
_CHECK_VIOLATION: frozenset[str | int] = frozenset({"23514", 4025, 3819, "SQLITE_CONSTRAINT_CHECK"})
_UNIQUE_VIOLATION: frozenset[str | int] = frozenset(
    {"23505", 1062, 1586, "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
)


def is_retryable(exc: BaseException) -> bool:
    """True for errors that mean "run the whole transaction again" (serialisation, deadlock)."""
    if not isinstance(exc, DBAPIError):
        return False
    codes = _error_codes(exc)
    if codes & _RETRYABLE:
        return True
    if any(isinstance(c, str) and c.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) for c in codes):
        return True
    return "database is locked" in str(exc.orig)


def is_check_violation(exc: BaseException) -> bool:
    """True when a CHECK constraint rejected the write (a business outcome, never retried)."""
    if not isinstance(exc, DBAPIError):
        return False
    return bool(_error_codes(exc) & _CHECK_VIOLATION) or "CHECK constraint failed" in str(exc.orig)


def is_unique_violation(exc: BaseException) -> bool:
    """True when a UNIQUE or PRIMARY KEY constraint refused the row (someone got there first)."""
    if not isinstance(exc, DBAPIError):
        return False
    return bool(_error_codes(exc) & _UNIQUE_VIOLATION) or "UNIQUE constraint failed" in str(
        exc.orig
    )
