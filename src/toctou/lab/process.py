"""Run ``toctou serve`` as a child process on a free loopback port (demo, tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["LabProcess", "LabStartError", "free_port", "serve_lab"]


class LabStartError(RuntimeError):
    """The lab process exited or did not answer in time; the message carries its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class LabProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workers: int
    worker_pids: set[int] = field(default_factory=set)
    http2: bool = False  # served by hypercorn: HTTP/1.1 and h2c on the same port

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_ready(lab: LabProcess, timeout: float) -> None:
    """Wait until /health answers from every worker (each health answer names its process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise LabStartError(f"toctou serve exited with {lab.process.returncode}:\n{lab.log()}")
        try:
            # A fresh connection each time, so the kernel can hand it to any worker.
            reply = httpx.get(f"{lab.base_url}/health", timeout=2)
            if reply.status_code == 200:
                lab.worker_pids.add(int(reply.json()["worker"]))
                if len(lab.worker_pids) >= lab.workers:
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise LabStartError(
        f"toctou serve did not answer from {lab.workers} worker(s) within {timeout:.0f} s "
        f"(saw {len(lab.worker_pids)}):\n{lab.log()}"
    )


@contextmanager
def serve_lab(
    *,
    db_url: str | None = None,
    workers: int = 1,
    race_window_ms: float = 0.0,
    data_dir: Path | None = None,
    redis_url: str | None = None,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    startup_timeout: float = 60.0,
    http2: bool = False,
) -> Iterator[LabProcess]:
    """Start the lab, yield it once every worker answers, and stop it on exit.

    ``redis_url`` is the Redis of the ``redis-lock`` strategies (``--redis``); ``http2`` serves
    it with hypercorn (``toctou serve --http2``): HTTP/1.1 and cleartext HTTP/2
    by prior knowledge on the same port.

    The child sees no ``TOCTOU_*`` variable of this process, only those given in ``env``.
    """
    with tempfile.TemporaryDirectory(prefix="toctou-lab-") as tmp:
        port = free_port()
        log_path = Path(tmp) / "serve.log"
        argv = [
            sys.executable, "-m", "toctou", "serve",
            "--host", host, "--port", str(port),
            "--workers", str(workers),
            "--race-window-ms", str(race_window_ms),
            "--data-dir", str(data_dir or Path(tmp) / "data"),
            *(("--db", db_url) if db_url else ()),
            *(("--redis", redis_url) if redis_url else ()),
            *(("--http2",) if http2 else ()),
            *extra_args,
        ]  # fmt: skip
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("TOCTOU_")}
        child_env.update(env or {})
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=child_env,
                start_new_session=True,
            )
        lab = LabProcess(f"http://127.0.0.1:{port}", process, log_path, workers, http2=http2)
        try:
            _wait_ready(lab, startup_timeout)
            yield lab
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
