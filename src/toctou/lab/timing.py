"""When each request became complete at the server: a ``Server-Timing`` header on every response.

Format (one header, two metrics, W3C Server Timing syntax)::

    Server-Timing: arrival;desc="1718000000123456789", worker;desc="4242"

- ``arrival``: ``time.time_ns()`` (wall clock, nanoseconds since the Unix epoch, so values from
  different worker processes on one host compare) at the moment the request became complete:

  - a request with a body (``Content-Length`` > 0, any ``Transfer-Encoding``, or body bytes
    that arrived without either, as HTTP/2 allows): when the ASGI ``receive()`` returned the
    final ``http.request`` message (``more_body`` false), i.e. when the body's last byte had
    been read by the server;
  - a body-less request: when the server called the application (the request head was parsed);
    over HTTP/2, where only END_STREAM ends a request, when ``receive()`` returned the final
    (empty) ``http.request`` message, if the application asked for it (the lab's admission
    gate does on every database route), else at the call.

  The lab's admission gate (``toctou.lab.admission``) reads every body before the request
  queues, unknown paths included, so the stamp is the body's completion there. Only on the
  routes it lets through unread (``/health``, ``/strategies``, the docs) can the application
  answer without reading a body it was sent (a 405), and then the value is the call time, as
  for a body-less request: the body may still have been in flight. The same holds for the 413
  the gate gives a body whose ``Content-Length`` is over its limit.
- ``worker``: the serving process's id, the same number ``GET /health`` reports as ``worker``.

Both values are digits only. The header is added to every HTTP response of the application,
errors included (handled 4xx/5xx and the 500 of an unhandled exception), as its own
``server-timing`` field after any the application set. ``parse_server_timing`` reads it back.

The middleware is pure ASGI: it wraps ``receive`` only when the request may carry a body, and
``send`` to add the header on ``http.response.start``. The cost is two clock reads at most and
one header, plus one yield to the event loop right after each stamp (see _stamp_first).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "ServerTiming", "ServerTimingMiddleware", "parse_server_timing"]

HEADER = "server-timing"
_HEADER = HEADER.encode()


def _pid() -> bytes:
    return str(os.getpid()).encode()


_worker = _pid()


def _after_fork() -> None:
    global _worker
    _worker = _pid()


os.register_at_fork(after_in_child=_after_fork)


def _declares_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


class ServerTimingMiddleware:
    """Add ``Server-Timing: arrival;desc="<ns>", worker;desc="<pid>"`` to every HTTP response."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrival = time.time_ns()
        declared = _declares_body(scope["headers"])

        async def timed_receive() -> Message:
            # Installed only where a body may follow the head: the request is complete when
            # the last http.request message comes (HTTP/2 and 3: at END_STREAM, with or without
            # a body, so a body-less request whose END_STREAM was held back is stamped then).
            nonlocal arrival
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                arrival = time.time_ns()
                await asyncio.sleep(0)  # see _stamp_first
            return message

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = b'arrival;desc="%d", worker;desc="%s"' % (arrival, _worker)
                message["headers"] = [*message.get("headers", ()), (_HEADER, value)]
            await send(message)

        # HTTP/1.x: a request without Content-Length or Transfer-Encoding has no body (RFC 9112
        # 6.3), so its receive needs no wrapper. HTTP/2 and 3 may send a body without either.
        may_have_body = declared or not scope.get("http_version", "1.1").startswith("1")
        # _stamp_first: yield once right after taking the stamp. Requests that complete in the
        # same event-loop pass then all take their stamps in that pass, before any of them runs
        # its handler; without it each stamp waited for the handlers woken before it (about
        # 1 ms each), and the arrival spread measured the server's dispatch, not the arrival.
        await asyncio.sleep(0)
        await self.app(scope, timed_receive if may_have_body else receive, timed_send)


@dataclass(frozen=True, slots=True)
class ServerTiming:
    """The lab's two metrics: arrival (``time.time_ns()`` at the server) and the worker's pid."""

    arrival_ns: int
    worker: int


def parse_server_timing(value: str) -> ServerTiming | None:
    """Read ``arrival`` and ``worker`` from a ``Server-Timing`` value (several joined by ``,``).

    Returns None when either metric or its ``desc`` is missing or not an integer. Other metrics
    and parameters are ignored; quoted and bare (token) ``desc`` values are both accepted.
    """
    found: dict[str, str] = {}
    for metric in _split(value, ","):
        name, *params = (p.strip() for p in _split(metric, ";"))
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "desc":
                found.setdefault(name.lower(), _unquote(raw.strip()))
    arrival, worker = found.get("arrival", ""), found.get("worker", "")
    if not (_digits(arrival) and _digits(worker)):
        return None
    return ServerTiming(int(arrival), int(worker))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _split(value: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double-quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        out: list[str] = []
        escaped = False
        for char in raw[1:-1]:
            if char == "\\" and not escaped:
                escaped = True
                continue
            out.append(char)
            escaped = False
        return "".join(out)
    return raw
