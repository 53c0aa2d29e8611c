"""Database URLs map onto the async drivers; driver errors are classified by their codes."""

from __future__ import annotations

import pytest

from toctou.lab.db import DatabaseURLError, normalize_url


@pytest.mark.parametrize(
    ("raw", "backend", "driver"),
    [
        ("sqlite:///data/lab.db", "sqlite", "sqlite+aiosqlite"),
        ("sqlite+pysqlite:///data/lab.db", "sqlite", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql", "postgresql+asyncpg"),
        ("postgresql+psycopg://u@h/db", "postgresql", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql", "postgresql+asyncpg"),
        ("mysql://root@h/db", "mariadb", "mysql+asyncmy"),
        ("mariadb://root@h/db", "mariadb", "mysql+asyncmy"),
        ("mysql+pymysql://root@h/db", "mariadb", "mysql+asyncmy"),
    ],
)
def test_url_picks_the_async_driver(raw: str, backend: str, driver: str) -> None:
    got_backend, url = normalize_url(raw)
    assert (got_backend, url.drivername) == (backend, driver)


def test_mariadb_url_gets_utf8mb4() -> None:
    assert normalize_url("mysql://root@h/db")[1].query["charset"] == "utf8mb4"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("sqlite://", "not :memory:"),
        ("sqlite:///:memory:", "not :memory:"),
        ("oracle://scott@h/db", "unsupported database 'oracle'"),
        ("not a url", "not a database URL"),
    ],
)
def test_unusable_url_is_refused(raw: str, message: str) -> None:
    with pytest.raises(DatabaseURLError, match=message):
        normalize_url(raw)
