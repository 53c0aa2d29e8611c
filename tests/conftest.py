"""Shared fixtures: real ``toctou serve`` processes on loopback, per backend and worker count."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis
from sqlalchemy.exc import DBAPIError

from tests.databases import create_session_database, drop_session_database
from toctou.lab.process import LabProcess, serve_lab
from toctou.lab.scenario import Strategy

BACKEND_ENV = {
    "postgresql": "TOCTOU_TEST_POSTGRES_URL",
    "mariadb": "TOCTOU_TEST_MARIADB_URL",
}
REDIS_ENV = "TOCTOU_TEST_REDIS_URL"
REQUIRE_ALL_ENV = "TOCTOU_TEST_REQUIRE_ALL_BACKENDS"
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
        if os.environ.get(REQUIRE_ALL_ENV):
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


_redis_answers: dict[str, str | None] = {}  # URL -> why it did not answer PING (None: it did)


def redis_url() -> str | None:
    """The Redis that every lab the tests start gets (``--redis``), if the environment names one;
    without it the labs' ``redis-lock`` strategies answer 503."""
    return os.environ.get(REDIS_ENV) or None


def require_redis() -> str:
    """The Redis URL, for a test that needs one: skipped when unset (failed where every backend
    is required), failed when the server does not answer."""
    url = redis_url()
    if url is None:
        if os.environ.get(REQUIRE_ALL_ENV):
            pytest.fail(f"{REDIS_ENV} is not set, and every backend is required here")
        pytest.skip(f"set {REDIS_ENV} (e.g. redis://127.0.0.1:6379/0) to run the Redis tests")
    if url not in _redis_answers:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
            _redis_answers[url] = None
        except redis.RedisError as exc:
            _redis_answers[url] = str(exc)
        finally:
            client.close()
    if _redis_answers[url] is not None:
        pytest.fail(f"Redis at {REDIS_ENV} does not answer: {_redis_answers[url]}")
    return url


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"redis: needs a Redis server ({REDIS_ENV})")


@pytest.fixture(autouse=True)
def _redis_if_marked(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("redis"):
        require_redis()


def strategy_params(listed: Mapping[str, Strategy[Any, Any]]) -> list[pytest.ParameterSet]:
    """Strategy names as test parameters; those that need Redis are marked ``redis``."""
    return [
        pytest.param(name, id=name, marks=[pytest.mark.redis] if "redis" in s.needs else [])
        for name, s in listed.items()
    ]


def runnable(listed: Mapping[str, Strategy[Any, Any]]) -> list[str]:
    """The strategies this session's labs can run: without Redis, none that needs it."""
    return [name for name, s in listed.items() if redis_url() or "redis" not in s.needs]


def start_lab(backend: str, workers: int, **options: Any) -> Iterator[LabProcess]:
    # Several servers share the session's database, so tests use their own item ids.
    url = backend_url(backend)
    with serve_lab(db_url=url, workers=workers, redis_url=redis_url(), **options) as lab:
        yield lab


def new_item_id() -> int:
    return next(_item_ids)


@pytest.fixture(scope="session")
def sqlite_lab() -> Iterator[LabProcess]:
    """One single-worker lab on SQLite for tests that do not vary the backend."""
    yield from start_lab("sqlite", 1)
