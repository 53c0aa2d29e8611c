"""A loopback TCP proxy that delays every chunk it receives by its own random delay.

A stand-in for a network path with jitter (a lighter netem): each ``recv`` is forwarded as one
``send`` after ``delay_ms ± jitter_ms`` (uniform, seedable), independently of every other chunk,
but never before the previous chunk of the same connection and direction (TCP keeps order).
TCP handshakes are local and instant; only data (and the end of a stream) is delayed.

    with JitterProxy(target_port=8000) as port:   # runs in a thread with its own event loop
        httpx.get(f"http://127.0.0.1:{port}/health")

    with proxy_process(8000) as port:             # the same, in a child process
        ...

The benchmarks use ``proxy_process``: a proxy thread shares the benchmark's GIL, so its work (a
link closing, a delayed chunk falling due) could hold the engine up in the middle of a release
and widen the spreads of the rows that do not even use the proxy.

    .venv/bin/python benchmarks/jitterproxy.py --target-port 8000   # standalone, until Ctrl-C
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import select
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["Jitter", "JitterProxy", "proxy_process"]

LOOPBACK = "127.0.0.1"
PAUSE_BYTES = 1 << 20  # stop reading a side while this much of its data waits to be sent
# hypercorn keeps a connection open for its keep-alive timeout (5 s) after the client has gone
# (uvicorn closes at once), and the proxy, keeping TCP's half-close, holds the link as long:
# naive and seed-style rounds through it leave ~20 links each behind for 5 s. The cap only
# guards against runaway loops; past it a connection is closed at once.
MAX_CONNECTIONS = 8192


MODELS = ("chunk", "path")
PATH_DRIFT_MS = 0.5  # path model: the shared delay's largest step per millisecond
PATH_NOISE_MS = 0.05  # path model: each chunk's own deviation from the shared delay


@dataclass
class Jitter:
    """Delays within ``[delay_ms - jitter_ms, delay_ms + jitter_ms]`` (never below 0).

    ``model="chunk"`` (the default, as issue 3 specifies the proxy): every chunk draws its own
    delay, uniformly, independently of every other. ``model="path"``: one delay shared by every
    connection, as on a network path where packets sent together meet the same queues. It
    drifts by at most ``PATH_DRIFT_MS`` per millisecond (a bounded random walk) and each chunk
    deviates from it by at most ``PATH_NOISE_MS``. The drift rate is this model's assumption,
    not a measurement: it sets how much a sender that spreads its requests over milliseconds
    loses against one that sends them within a fraction of one.
    """

    delay_ms: float = 20.0
    jitter_ms: float = 10.0
    seed: int | None = None
    model: str = "chunk"
    rng: random.Random = field(init=False)
    _path_ms: float = field(init=False)
    _path_at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"jitter model {self.model!r}: choose from {', '.join(MODELS)}")
        self.rng = random.Random(self.seed)
        self._path_ms = self.delay_ms

    def draw_s(self, now: float) -> float:
        """The delay for a chunk received at ``now`` (event-loop seconds)."""
        low, high = self.delay_ms - self.jitter_ms, self.delay_ms + self.jitter_ms
        if self.model == "chunk":
            return max(0.0, self.rng.uniform(low, high)) / 1000
        self._drift(now, low, high)
        return max(0.0, self._path_ms + self.rng.uniform(-PATH_NOISE_MS, PATH_NOISE_MS)) / 1000

    def _drift(self, now: float, low: float, high: float) -> None:
        if self._path_at is None:
            self._path_at = now
        steps = min(int((now - self._path_at) * 1000), 1000)  # a second idle: as good as new
        for _ in range(steps):
            step = self._path_ms + self.rng.uniform(-PATH_DRIFT_MS, PATH_DRIFT_MS)
            self._path_ms = low + abs(step - low) if step < low else high - abs(step - high)
        self._path_at = now if steps == 1000 else self._path_at + steps / 1000


class _Pipe:
    """One direction of one connection: chunks wait in order until their due time."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, jitter: Jitter, on_finish: Callable[[], None]
    ) -> None:
        self.loop = loop
        self.jitter = jitter
        self.on_finish = on_finish
        self.source: asyncio.Transport | None = None
        self.dest: asyncio.Transport | None = None
        self.queue: deque[tuple[float, bytes | None]] = deque()  # None: end of stream
        self.queued_bytes = 0
        self.last_due = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.finished = False

    def push(self, data: bytes | None) -> None:
        now = self.loop.time()
        due = max(now + self.jitter.draw_s(now), self.last_due)
        self.last_due = due
        self.queue.append((due, data))
        self.queued_bytes += len(data or b"")
        if self.queued_bytes > PAUSE_BYTES and self.source is not None:
            self.source.pause_reading()
        self.arm()

    def arm(self) -> None:
        if self.timer is None and self.queue and self.dest is not None:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now and self.dest is not None:
            _, data = self.queue.popleft()
            self.send(self.dest, data)
        if self.source is not None and self.queued_bytes <= PAUSE_BYTES:
            with contextlib.suppress(RuntimeError):
                self.source.resume_reading()
        self.arm()

    def send(self, dest: asyncio.Transport, data: bytes | None) -> None:
        if data is None:
            if not dest.is_closing() and dest.can_write_eof():
                dest.write_eof()
            self.finish()
            return
        self.queued_bytes -= len(data)
        if not dest.is_closing():
            dest.write(data)

    def finish(self) -> None:
        """Nothing more goes this way: drop what still waits, tell the link."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        if not self.finished:
            self.finished = True
            self.on_finish()


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; what it receives goes into ``outgoing``."""

    def __init__(self, link: _Link, outgoing: _Pipe) -> None:
        self.link = link
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.outgoing.source = transport
        if self.link.closed:  # refused (over MAX_CONNECTIONS) before the socket was ours
            transport.close()

    def data_received(self, data: bytes) -> None:
        self.outgoing.push(data)

    def eof_received(self) -> bool:
        self.outgoing.push(None)
        return True  # keep our sending half open until the peer finishes too

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self)


class _Link:
    """A client connection and its upstream connection, with one pipe per direction."""

    def __init__(self, proxy: JitterProxy, loop: asyncio.AbstractEventLoop) -> None:
        self.proxy = proxy
        self.up = _Pipe(loop, proxy.jitter, self.maybe_close)  # client -> target
        self.down = _Pipe(loop, proxy.jitter, self.maybe_close)  # target -> client
        self.client = _Side(self, self.up)
        self.server = _Side(self, self.down)
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    async def connect(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await loop.create_connection(
                lambda: self.server, self.proxy.target_host, self.proxy.target_port
            )
        except OSError:
            self.close()
            return
        self.up.dest = self.server.transport
        self.down.dest = self.client.transport
        self.up.arm()

    def lost(self, side: _Side) -> None:
        """One socket is gone: nothing more reaches it; what it sent drains, then ends."""
        if self.closed:
            return
        into, out_of = (self.down, self.up) if side is self.client else (self.up, self.down)
        into.finish()
        other = self.server if side is self.client else self.client
        if other.transport is None or other.transport.is_closing():
            self.close()
        elif not out_of.finished:
            out_of.push(None)

    def maybe_close(self) -> None:
        if self.up.finished and self.down.finished:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for pipe in (self.up, self.down):
            pipe.finished = True
            pipe.finish()
        for side in (self.client, self.server):
            if side.transport is not None:
                side.transport.close()
        self.proxy.links.discard(self)


class JitterProxy:
    """Run the proxy in a daemon thread with its own loop; ``with`` yields the listening port."""

    def __init__(
        self,
        target_port: int,
        *,
        target_host: str = LOOPBACK,
        delay_ms: float = 20.0,
        jitter_ms: float = 10.0,
        seed: int | None = None,
        model: str = "chunk",
    ) -> None:
        if target_host not in (LOOPBACK, "localhost"):
            raise ValueError("the jitter proxy only forwards to loopback")
        self.target_host = target_host
        self.target_port = target_port
        self.jitter = Jitter(delay_ms, jitter_ms, seed, model)
        self.links: set[_Link] = set()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> int:
        self._thread = threading.Thread(target=self._run, name="jitterproxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10) or self._error is not None:
            raise RuntimeError(f"jitter proxy did not start: {self._error}")
        return self.port

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the thread that waits in __enter__
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop, self._stop = loop, asyncio.Event()
        self._server = await loop.create_server(self._accept, LOOPBACK, 0, backlog=512)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._started.set()
        async with self._server:
            await self._stop.wait()
            for link in list(self.links):
                link.close()

    def _accept(self) -> asyncio.Protocol:
        loop = asyncio.get_running_loop()
        link = _Link(self, loop)
        if len(self.links) >= MAX_CONNECTIONS:
            loop.call_soon(link.close)
        else:
            self.links.add(link)
            link.task = loop.create_task(link.connect(loop))
        return link.client


@contextlib.contextmanager
def proxy_process(
    target_port: int,
    *,
    delay_ms: float = 20.0,
    jitter_ms: float = 10.0,
    seed: int | None = None,
    model: str = "chunk",
) -> Iterator[int]:
    """Run the proxy (``main`` below) in a child process; yield its port; stop it on exit."""
    argv = [
        sys.executable, __file__, "--target-port", str(target_port),
        "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms), "--model", model,
        *(("--seed", str(seed)) if seed is not None else ()),
    ]  # fmt: skip
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 10)
        line = child.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"jitter proxy did not start (exit code {child.poll()})")
        yield int(line.split()[0].rsplit(":", 1)[1])  # "127.0.0.1:PORT -> ..."
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--jitter-ms", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--model", choices=MODELS, default="chunk", help="see Jitter")
    args = parser.parse_args()
    proxy = JitterProxy(
        args.target_port,
        delay_ms=args.delay_ms,
        jitter_ms=args.jitter_ms,
        seed=args.seed,
        model=args.model,
    )
    with proxy as port, contextlib.suppress(KeyboardInterrupt):
        jitter = f"{args.delay_ms:g} ± {args.jitter_ms:g} ms, {args.model} model"
        print(
            f"127.0.0.1:{port} -> 127.0.0.1:{args.target_port}, {jitter}; Ctrl-C stops",
            flush=True,
        )
        threading.Event().wait()


if __name__ == "__main__":
    main()
