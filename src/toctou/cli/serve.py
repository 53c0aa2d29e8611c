"""``toctou serve``: run the lab with uvicorn, one or many worker processes on one database.

``--http2`` serves it with hypercorn instead: HTTP/1.1 and cleartext HTTP/2 (h2c, by prior
knowledge or by ``Upgrade: h2c``) on the same port, at most ``H2_MAX_CONCURRENT_STREAMS`` open
streams per HTTP/2 connection.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toctou.cli.console import err_console, fail
from toctou.urls import safe_url

if TYPE_CHECKING:
    from hypercorn.config import Config as HypercornConfig

__all__ = ["H2_MAX_CONCURRENT_STREAMS", "bind_socket", "hypercorn_config", "is_loopback", "serve"]

LAB_FACTORY = "toctou.lab.app:create_app_from_env"
CONNECT_TIMEOUT_S = 10.0

H2_MAX_CONCURRENT_STREAMS = 100
"""Hypercorn's default SETTINGS_MAX_CONCURRENT_STREAMS, kept. A client that opens one stream
more on a connection gets the whole connection closed (GOAWAY PROTOCOL_ERROR from the h2
library), not just that stream refused: send at most this many requests at once per
connection."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket with ``proto=IPPROTO_TCP``.

    asyncio enables TCP_NODELAY only on sockets whose ``proto`` is IPPROTO_TCP, and uvicorn's own
    ``bind_socket`` leaves it 0, so with ``--workers`` every response waited on Nagle's algorithm
    (about 40 ms per keep-alive request; uvicorn issue #3149). Accepted sockets inherit ``proto``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; off loopback, lab control needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    db: Annotated[
        str | None,
        typer.Option(
            help="sqlite:///path, postgresql://... or mysql://... (default: SQLite in --data-dir).",
            envvar="TOCTOU_DATABASE_URL",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes sharing the database.")
    ] = 1,
    race_window_ms: Annotated[
        float,
        typer.Option(
            min=0,
            max=1000,
            help="Delay between check and commit, in ms.",
            envvar="TOCTOU_RACE_WINDOW_MS",
        ),
    ] = 0.0,
    data_dir: Annotated[
        Path,
        typer.Option(help="Where the default SQLite file lives.", envvar="TOCTOU_DATA_DIR"),
    ] = Path("data"),
    redis: Annotated[
        str | None,
        typer.Option(
            help="redis://host:6379/0 for the redis-lock strategies (unset, they answer 503).",
            envvar="TOCTOU_REDIS_URL",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    http2: Annotated[
        bool,
        typer.Option(
            "--http2",
            help="Serve with hypercorn: HTTP/1.1 and cleartext HTTP/2 (h2c) on the same port.",
        ),
    ] = False,
) -> None:
    """Serve the deliberately vulnerable lab."""
    try:
        import uvicorn  # noqa: F401 - the lab's extra, checked before anything starts
        from redis.asyncio.connection import parse_url

        from toctou.lab.db import DatabaseURLError, normalize_url
    except ImportError:
        fail("the lab needs its extra: pip install 'toctou[lab]'")
    if http2:
        try:
            import hypercorn  # noqa: F401
        except ImportError:
            fail("--http2 needs hypercorn, in the lab's extra: pip install 'toctou[lab]'")
    if db is not None:
        try:
            normalize_url(db)
        except DatabaseURLError as exc:
            raise typer.BadParameter(str(exc), param_hint="--db") from None
        except ImportError as exc:
            fail(f"{exc}: pip install 'toctou[postgres]' or 'toctou[mariadb]'")
        os.environ["TOCTOU_DATABASE_URL"] = db
    if redis is not None:
        try:
            parse_url(redis)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--redis") from None
        os.environ["TOCTOU_REDIS_URL"] = redis
    os.environ["TOCTOU_DATA_DIR"] = str(data_dir.resolve())
    os.environ["TOCTOU_RACE_WINDOW_MS"] = repr(race_window_ms)
    if is_loopback(host):
        os.environ.pop("TOCTOU_ADMIN_TOKEN", None)
    elif os.environ.get("TOCTOU_ADMIN_TOKEN"):  # the operator's: never printed (logs keep it)
        err_console.print(
            f"Lab control routes need Authorization: Bearer $TOCTOU_ADMIN_TOKEN on {host}",
            highlight=False,
        )
    else:  # generated: printed once, since nobody else knows it
        token = secrets.token_urlsafe(24)
        os.environ["TOCTOU_ADMIN_TOKEN"] = token
        err_console.print(
            f"Lab control routes need [bold]Authorization: Bearer {token}[/] on {host} "
            "(a token generated for this run; set TOCTOU_ADMIN_TOKEN to choose one)",
            highlight=False,
        )
    database = db or f"sqlite:///{(data_dir / 'toctou.db').resolve()}"
    if problem := check_database(database, data_dir):
        fail(problem)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    url = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    err_console.print(
        f"toctou lab on [bold]{url}[/] ({workers} worker(s), {safe_url(database)}): "
        f"API docs at {url}/docs, the catalogue at {url}/scenarios; Ctrl-C stops it",
        highlight=False,
        soft_wrap=True,
    )
    # uvicorn re-raises the SIGINT it handled once it has shut down: a stop, not a failure
    with contextlib.suppress(KeyboardInterrupt):
        _run(sock, host, workers=workers, access_log=access_log, http2=http2)
    err_console.print("toctou lab stopped")


def check_database(url: str, data_dir: Path) -> str | None:
    """Connect to the lab's database once, before any worker starts: why it cannot be used, in
    one line, or None. (Without this a wrong URL is a traceback per worker, and with
    ``--workers`` the supervisor exits 0.)"""
    import asyncio

    from sqlalchemy import text

    from toctou.lab.db import open_database

    async def connect() -> None:
        database = open_database(url, pool_size=1)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                async with database.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        finally:
            await database.dispose()

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(connect())
    except TimeoutError:
        return f"the database at {safe_url(url)} did not answer within {CONNECT_TIMEOUT_S:g} s"
    except Exception as exc:  # every driver has errors of its own: each in one line
        cause = getattr(exc, "orig", None) or exc
        return f"cannot use the database at {safe_url(url)}: {type(cause).__name__}: {cause}"
    return None


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _run(sock: socket.socket, host: str, *, workers: int, access_log: bool, http2: bool) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if http2:
        _serve_hypercorn(hypercorn_config(sock, workers=workers, access_log=access_log))
        return
    config = uvicorn.Config(
        LAB_FACTORY,
        factory=True,
        host=host,
        port=sock.getsockname()[1],
        workers=workers,
        access_log=access_log,
        log_level="info",
    )
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()


def hypercorn_config(sock: socket.socket, *, workers: int, access_log: bool) -> HypercornConfig:
    """Hypercorn settings serving the lab on ``sock``, which the config takes over.

    The socket comes from ``bind_socket``, as for uvicorn. Hypercorn's own sockets would get
    TCP_NODELAY as well (it sets the option on its listening socket and Linux copies it to accepted
    ones, although their ``proto`` is 0, so asyncio does not), but ``fd://`` keeps one binding
    path: the socket rebuilt from the descriptor reads ``proto`` (IPPROTO_TCP) back from the
    kernel, keeps it when pickled to spawned workers, and asyncio then sets TCP_NODELAY on every
    accepted connection.
    """
    from hypercorn.config import Config

    config = Config()
    # Hypercorn evaluates the text after the colon: each worker calls the factory.
    config.application_path = f"{LAB_FACTORY}()"
    config.bind = [f"fd://{sock.detach()}"]
    config.workers = workers
    config.accesslog = "-" if access_log else None
    config.errorlog = "-"
    config.loglevel = "INFO"
    config.h2_max_concurrent_streams = H2_MAX_CONCURRENT_STREAMS
    # Hypercorn closes a connection after 1000 requests by default; uvicorn never does. Match
    # uvicorn, so long keep-alive or HTTP/2 runs compare between the two servers.
    config.keep_alive_max_requests = 2**62
    # The event loop uvicorn picks when uvloop is installed (the lab extra installs it).
    config.worker_class = "uvloop" if _importable("uvloop") else "asyncio"
    return config


def _importable(module: str) -> bool:
    """As uvicorn decides: a module that is installed but fails to import counts as missing."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _serve_hypercorn(config: HypercornConfig) -> None:
    from hypercorn.asyncio.run import asyncio_worker, uvloop_worker
    from hypercorn.run import run

    if config.workers == 1:
        # In this process, as uvicorn.Server does: SIGINT/SIGTERM shut it down gracefully.
        (uvloop_worker if config.worker_class == "uvloop" else asyncio_worker)(config)
        return
    # Spawns the workers, each loading the app itself; SIGINT/SIGTERM stop them all.
    exit_code = run(config)
    if exit_code:
        raise typer.Exit(exit_code)
