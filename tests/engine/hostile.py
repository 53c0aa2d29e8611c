"""Small misbehaving servers on loopback, each on its own event loop thread."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import h11

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextmanager
def serve(handler: Handler, *, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """Run ``handler`` for every connection on 127.0.0.1; yield the port; stop on exit."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []
    stop: list[asyncio.Event] = []

    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    async def main() -> None:
        done = asyncio.Event()
        stop.append(done)
        server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=tls)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await done.wait()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(5)
        loop.close()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """Read a request up to the blank line (the tests send body-less or tiny requests)."""
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        return b""


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.0\r\nthis is not http\r\n\r\n")
    await writer.drain()
    writer.close()


async def reset_mid_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
    await writer.drain()
    # SO_LINGER with a zero timeout: closing sends a TCP reset instead of a clean FIN.
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    writer.transport.abort()


async def _pour(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    head: bytes,
    chunk: bytes,
    times: int,
    pause_s: float = 0.0,
) -> None:
    """After the request: ``head``, then ``chunk`` ``times`` over, until the client hangs up."""
    await read_head(reader)
    writer.write(head)
    try:
        for _ in range(times):
            writer.write(chunk)
            await writer.drain()
            if pause_s:
                await asyncio.sleep(pause_s)
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One body byte every 50 ms: far longer than any client timeout."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    await _pour(reader, writer, head, b"x", 10_000, pause_s=0.05)


async def huge_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 MB body, as fast as the client reads."""
    size = 200 * 2**20
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode()
    await _pour(reader, writer, head, b"y" * 2**16, size // 2**16)


async def endless_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A status line, then header lines that never end (up to 16 MB of them)."""
    line = b"X-Padding: " + b"p" * 1000 + b"\r\n"
    await _pour(reader, writer, b"HTTP/1.1 200 OK\r\n", line, 16_000)


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)
    await asyncio.sleep(30)
    writer.close()


def counter_app() -> tuple[Handler, list[int]]:
    """A racy counter over HTTP/1.1: GET returns {"n": N}; POST reads N, yields, writes N+1."""
    state = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if not head:
            writer.close()
            return
        if head.startswith(b"POST"):
            seen = state[0]
            await asyncio.sleep(0.01)
            state[0] = seen + 1
            body = b'{"ok": true}'
        else:
            body = b'{"n": %d}' % state[0]
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    return handle, state


@dataclass(frozen=True)
class Seen:
    """One request as a server received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def echo_app() -> tuple[Handler, list[Seen]]:
    """Records every request exactly (h11 as the server); GET answers {"n": 0}, others 200."""
    seen: list[Seen] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(our_role=h11.SERVER)
        request: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65_536), 5)
                if not data:
                    return
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert request is not None
        seen.append(
            Seen(
                request.method.decode(),
                request.target.decode(),
                {k.decode(): v.decode() for k, v in request.headers.raw_items()},
                body,
            )
        )
        answer = b'{"n": 0}' if request.method == b"GET" else b'{"ok": true}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(answer), answer)
        )
        await writer.drain()

    return handle, seen
