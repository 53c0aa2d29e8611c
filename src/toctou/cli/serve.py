"""``toctou serve``: run the lab with uvicorn, one or many worker processes on one database."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from pathlib import Path
from typing import Annotated

import typer

from toctou.cli.console import err_console, fail

__all__ = ["bind_socket", "is_loopback", "serve"]

LAB_FACTORY = "toctou.lab.app:create_app_from_env"


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
            help="sqlite:///path, postgresql://... or mysql://... (default: SQLite in --data-dir)."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes sharing the database.")
    ] = 1,
    race_window_ms: Annotated[
        float, typer.Option(min=0, max=1000, help="Delay between check and commit, in ms.")
    ] = 0.0,
    data_dir: Annotated[Path, typer.Option(help="Where the default SQLite file lives.")] = Path(
        "data"
    ),
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve the deliberately vulnerable lab."""
    try:
        import uvicorn
        from uvicorn.supervisors import Multiprocess

        from toctou.lab.db import DatabaseURLError, normalize_url
    except ImportError:
        fail("the lab needs its extra: pip install 'toctou[lab]'")
    if db is not None:
        try:
            normalize_url(db)
        except DatabaseURLError as exc:
            raise typer.BadParameter(str(exc), param_hint="--db") from None
        except ImportError as exc:
            fail(f"{exc}: pip install 'toctou[postgres]' or 'toctou[mariadb]'")
        os.environ["TOCTOU_DATABASE_URL"] = db
    os.environ["TOCTOU_DATA_DIR"] = str(data_dir.resolve())
    os.environ["TOCTOU_RACE_WINDOW_MS"] = repr(race_window_ms)
    if is_loopback(host):
        os.environ.pop("TOCTOU_ADMIN_TOKEN", None)
    else:
        token = os.environ.get("TOCTOU_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        os.environ["TOCTOU_ADMIN_TOKEN"] = token
        err_console.print(
            f"Lab control routes need [bold]Authorization: Bearer {token}[/] on {host}",
            highlight=False,
        )
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
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
