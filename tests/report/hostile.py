"""A loopback target whose answers try to run script in a report: bodies and headers with
``<script>`` and ``</script><img onerror>``, some of them 500s, each with a ``Server-Timing``
arrival stamp and worker, as the lab sends."""

from __future__ import annotations

import asyncio
import itertools
import time

from tests.engine.hostile import Handler, read_head

SCRIPT = "<script>alert('body')</script>"
BREAKOUT = "</script><img src=x onerror=\"alert('img')\"><script>alert('breakout')</script>"
HEADER = "<script>alert('header')</script>"
HOSTILE_STRATEGY = "<img src=x onerror=alert('strategy')>"  # a matrix cell's strategy name
HOSTILE_ERROR = "</script><script>alert('cell')</script>"  # and its error
BODIES = (
    '{"status": "purchased", "note": "' + SCRIPT + '"}',
    BREAKOUT,
    '{"status": "rejected", "reason": "' + BREAKOUT.replace('"', '\\"') + '"}',
)


def hostile_app(*, wins: int = 2) -> Handler:
    """The first ``wins`` requests get 200, then 409 and 500 in turn, every body hostile."""
    served = itertools.count()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await read_head(reader):
            return
        arrival = time.time_ns()
        n = next(served)
        status = 200 if n < wins else (409, 500)[n % 2]
        body = BODIES[n % len(BODIES)].encode()
        reason = {200: b"OK", 409: b"Conflict", 500: b"Internal Server Error"}[status]
        writer.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
            b'Server-Timing: arrival;desc="%d", worker;desc="4242"\r\n'
            b"X-Evil: %s\r\nConnection: close\r\n\r\n%s"
            % (status, reason, len(body), arrival, HEADER.encode(), body)
        )
        await writer.drain()

    return handle
