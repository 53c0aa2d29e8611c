"""``toctou serve``: argument errors, the admin token off loopback, and TCP_NODELAY."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import uvloop
from typer.testing import CliRunner

from tests.cli.sockets import nodelay_of_accepted
from toctou.cli import app
from toctou.cli.serve import bind_socket, is_loopback
from toctou.lab.process import free_port, serve_lab

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "oracle://scott@h/db"], "unsupported database"),
        (["--db", "sqlite:///:memory:"], "not :memory:"),
        (["--workers", "0"], "--workers"),
        (["--port", "70000"], "--port"),
        (["--race-window-ms", "1001"], "--race-window-ms"),
        (["--race-window-ms", "-1"], "--race-window-ms"),
        (["--redis", "http://127.0.0.1:6379"], "redis://"),
        (["--redis", "redis://127.0.0.1:port"], "--redis"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_port_in_use_exits_1_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port), "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("10.1.2.3", False), ("example.org", False)],
)  # fmt: skip
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_lab_control_needs_the_token_off_loopback() -> None:
    # Bound to every address, but the test only ever talks to 127.0.0.1.
    with serve_lab(host="0.0.0.0", env={"TOCTOU_ADMIN_TOKEN": "s3cret"}) as lab:
        reset = f"{lab.base_url}/lab/reset"
        before = httpx.get(f"{lab.base_url}/lab/audit").json()
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            reply = httpx.post(reset, json={"item_id": 1, "stock": 9}, headers=headers)
            assert reply.status_code == 401
            assert reply.json()["error"] == "unauthorized"
        assert httpx.get(f"{lab.base_url}/reset").status_code == 401
        assert httpx.get(f"{lab.base_url}/lab/audit").json() == before
        ok = httpx.post(
            reset, json={"item_id": 1, "stock": 9}, headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200
        assert ok.json()["stock"] == 9


def test_the_operators_token_is_never_printed() -> None:
    with serve_lab(host="0.0.0.0", env={"TOCTOU_ADMIN_TOKEN": "s3cret-token"}) as lab:
        log = lab.log()
        assert "Authorization: Bearer $TOCTOU_ADMIN_TOKEN" in log
        assert "s3cret-token" not in log
        reply = httpx.post(
            f"{lab.base_url}/lab/reset", json={}, headers={"Authorization": "Bearer s3cret-token"}
        )
        assert reply.status_code == 200
        assert "s3cret-token" not in lab.log()  # nor once a request used it


def test_a_token_is_generated_and_printed_when_none_is_set() -> None:
    with serve_lab(host="0.0.0.0") as lab:
        line = next(ln for ln in lab.log().splitlines() if "Authorization: Bearer" in ln)
        token = line.split("Bearer ", 1)[1].split()[0]
        reply = httpx.post(
            f"{lab.base_url}/lab/reset", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        assert reply.status_code == 200
        assert httpx.post(f"{lab.base_url}/lab/reset", json={}).status_code == 401


def test_lab_control_is_open_on_loopback(sqlite_lab: object) -> None:
    base_url = sqlite_lab.base_url  # type: ignore[attr-defined]
    assert httpx.post(f"{base_url}/lab/reset", json={"item_id": 1, "stock": 1}).status_code == 200


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_accepted_connections_have_tcp_nodelay(loop: str) -> None:
    """asyncio sets TCP_NODELAY only when the listening socket says IPPROTO_TCP (uvicorn #3149).

    uvicorn runs the lab on uvloop when it is installed (the lab extra installs it), asyncio
    otherwise: the socket from bind_socket must give accepted connections TCP_NODELAY on both.
    """
    run = uvloop.run if loop == "uvloop" else asyncio.run
    assert run(nodelay_of_accepted(bind_socket("127.0.0.1", 0))) != 0


def toctou_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``toctou serve`` as a user runs it, its output captured."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TOCTOU_")}
    return subprocess.Popen(
        [sys.executable, "-m", "toctou", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**child_env, **(env or {})},
    )


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    "url",
    ["postgresql://nobody:pw@127.0.0.1:1/test", "mysql://root:pw@127.0.0.1:1/test"],
    ids=["postgresql", "mariadb"],
)
def test_an_unreachable_database_is_one_line_and_exit_1(url: str, workers: str) -> None:
    """Before, each worker printed a traceback, and with --workers the supervisor exited 0."""
    served = toctou_serve("--port", "0", "--db", url, "--workers", workers)
    output, _ = served.communicate(timeout=120)
    assert served.returncode == 1, output
    assert "Traceback" not in output
    (line,) = [ln for ln in output.splitlines() if ln.strip()][:1]
    assert line.startswith("error: cannot use the database at ")
    assert ":***@127.0.0.1:1" in output  # the password is not printed
    assert "pw@" not in output


def test_settings_from_the_environment_are_kept_and_the_url_printed(tmp_path: Path) -> None:
    """TOCTOU_DATA_DIR (and the other documented variables) are not overwritten by defaults;
    the lab says where it listens; Ctrl-C stops it with exit 0."""
    port = str(free_port())
    served = toctou_serve("--port", port, env={"TOCTOU_DATA_DIR": str(tmp_path / "here")})
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert (tmp_path / "here" / "toctou.db").exists()
    finally:
        served.send_signal(signal.SIGINT)
        output, _ = served.communicate(timeout=60)
    assert served.returncode == 0, output
    assert f"toctou lab on http://127.0.0.1:{port} " in output
    assert f"API docs at http://127.0.0.1:{port}/docs" in output
    assert output.rstrip().endswith("toctou lab stopped")
