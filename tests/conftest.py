"""Shared fixtures: real ``toctou serve`` processes on loopback, per backend and worker count."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator

import pytest

from toctou.lab.db import open_database
from toctou.lab.models import Base
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


def backend_url(backend: str) -> str | None:
    """The URL to test ``backend`` against; None for SQLite (a fresh file per server)."""
    if backend == "sqlite":
        return None
    url = os.environ.get(BACKEND_ENV[backend])
    if not url:
        if os.environ.get("TOCTOU_TEST_REQUIRE_ALL_BACKENDS"):
            pytest.fail(f"{BACKEND_ENV[backend]} is not set, and every backend is required here")
        pytest.skip(f"set {BACKEND_ENV[backend]} to run the {backend} tests")
    return url


async def _drop_tables(url: str) -> None:
    db = open_database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
    finally:
        await db.dispose()


_fresh: set[str] = set()


def start_lab(backend: str, workers: int) -> Iterator[LabProcess]:
    url = backend_url(backend)
    if url is not None and url not in _fresh:
        # A clean schema once per test session; several servers then share it, so tests use
        # their own item ids (see new_item_id).
        asyncio.run(_drop_tables(url))
        _fresh.add(url)
    with serve_lab(db_url=url, workers=workers) as lab:
        yield lab


def new_item_id() -> int:
    return next(_item_ids)


@pytest.fixture(scope="session")
def sqlite_lab() -> Iterator[LabProcess]:
    """One single-worker lab on SQLite for tests that do not vary the backend."""
    yield from start_lab("sqlite", 1)
