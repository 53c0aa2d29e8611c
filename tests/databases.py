"""A database of this test session's own on each server, so sessions never share tables.

The URLs in ``TOCTOU_TEST_POSTGRES_URL`` / ``TOCTOU_TEST_MARIADB_URL`` name a server and an
account allowed to create databases. Each test session creates ``toctou_test_<pid>`` there,
points its labs at it and drops it at the end; databases left by sessions whose process is gone
(killed before they could clean up) are dropped on the way. Benchmarks, other developers' test
sessions and anything else using the server's ``test`` database are left alone.
"""

from __future__ import annotations

import asyncio
import os
import re

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from toctou.lab.db import normalize_url

__all__ = ["create_session_database", "drop_session_database"]

PREFIX = "toctou_test_"
_NAME = re.compile(rf"^{PREFIX}(\d+)$")


def _name() -> str:
    return f"{PREFIX}{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _existing(conn: AsyncConnection, backend: str) -> list[str]:
    if backend == "postgresql":
        found = await conn.exec_driver_sql("SELECT datname FROM pg_database")
    else:
        found = await conn.exec_driver_sql("SHOW DATABASES")
    return [row[0] for row in found if _NAME.match(row[0])]


async def _drop(conn: AsyncConnection, backend: str, name: str) -> None:
    if backend == "postgresql":  # FORCE: a lab that was killed may still hold connections
        await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


async def _manage(server_url: str, *, create: bool) -> str:
    backend, url = normalize_url(server_url)
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for name in await _existing(conn, backend):
                match = _NAME.match(name)
                if name == _name() or (match and not _alive(int(match[1]))):
                    await _drop(conn, backend, name)
            if create:
                charset = "" if backend == "postgresql" else " CHARACTER SET utf8mb4"
                quoted = f'"{_name()}"' if backend == "postgresql" else f"`{_name()}`"
                await conn.exec_driver_sql(f"CREATE DATABASE {quoted}{charset}")
    finally:
        await admin.dispose()
    return make_url(server_url).set(database=_name()).render_as_string(hide_password=False)


def create_session_database(server_url: str) -> str:
    """Create this session's database on ``server_url``'s server (afresh); return its URL."""
    return asyncio.run(_manage(server_url, create=True))


def drop_session_database(server_url: str) -> None:
    asyncio.run(_manage(server_url, create=False))
