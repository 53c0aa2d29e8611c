"""Shared fixtures: real ``toctou serve`` processes on loopback, per backend and worker count."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import DBAPIError

from tests.databases import create_session_database, drop_session_database
from toctou.lab.process import LabProcess, serve_lab

BACKEND_ENV = {
    "postgresql": "TOCTOU_TEST_POSTGRES_URL",
    "mariadb": "TOCTOU_TEST_MARIADB_URL",
}
# Every backend, for tests parametrised over them (the marks let `-m "not mariadb"` deselect).
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
]
_item_ids = itertools.count(100)


_session_databases: dict[str, str] = {}  # server URL from the environment -> this session's


def backend_url(backend: str) -> str | None:
    """The URL to test ``backend`` against; None for SQLite (a fresh file per server).

    For PostgreSQL and MariaDB: a database of this session's own on the server the environment
    names (tests/databases.py), created on first use and dropped when the session ends.
    """
    if backend == "sqlite":
        return None
    server = os.environ.get(BACKEND_ENV[backend])
    if not server:
        if os.environ.get("TOCTOU_TEST_REQUIRE_ALL_BACKENDS"):
            pytest.fail(f"{BACKEND_ENV[backend]} is not set, and every backend is required here")
        pytest.skip(f"set {BACKEND_ENV[backend]} to run the {backend} tests")
    if server not in _session_databases:
        try:
            _session_databases[server] = create_session_database(server)
        except (OSError, DBAPIError) as exc:
            pytest.fail(f"cannot create a test database via {BACKEND_ENV[backend]}: {exc}")
    return _session_databases[server]


def pytest_sessionfinish() -> None:
    for server in _session_databases:
        try:
            drop_session_database(server)
        except (OSError, DBAPIError) as exc:  # the next session's start drops it anyway
            print(f"could not drop this session's database on {server}: {exc}", file=sys.stderr)


def start_lab(backend: str, workers: int) -> Iterator[LabProcess]:
    # Several servers share the session's database, so tests use their own item ids.
    with serve_lab(db_url=backend_url(backend), workers=workers) as lab:
        yield lab


def new_item_id() -> int:
    return next(_item_ids)


@pytest.fixture(scope="session")
def sqlite_lab() -> Iterator[LabProcess]:
    """One single-worker lab on SQLite for tests that do not vary the backend."""
    yield from start_lab("sqlite", 1)
