"""Admission: a worker runs at most as many database requests at once as it has connections.

Why: a burst of 200 requests arriving together used to start 200 handlers in one event-loop pass.
Each ran FastAPI's routing, validation and the ORM set-up (about 0.5 ms on a 2-core machine)
before its first wait, which was for one of the 20 pooled connections; a ``GET /health`` that
arrived during that pass waited 80-175 ms for it to end. Behind this gate, requests beyond the
limit wait in arrival order on a semaphore, which costs almost nothing, so no pass runs more than
``limit`` handlers' worth of work and ``/health`` answers in a few milliseconds (worst ~20 ms)
(BENCHMARKS.md, "/health under a burst"). A request held a connection for its whole handler
anyway, so the gate only moves the queue from the pool to the front of the handler: no request
that could have run is held back.

uvicorn's ``--limit-concurrency`` does not do this: it answers 503 at once beyond its limit and
counts every connection, ``/health`` included.

Each request's body is read *before* it queues. The lab's arrival stamp (``toctou.lab.timing``)
is taken when the body's last byte is read, so a request that waits here still reports when it
arrived, not when it was admitted. A request that waits longer than ``timeout_s`` is answered
``503`` with ``Retry-After`` and never reaches the database; one whose client left before the
body was complete is dropped before it queues. Since the gate holds bodies in memory, it refuses
one over ``MAX_BODY_BYTES`` (the lab's JSON bodies are a few hundred bytes) with ``413``, from
its ``Content-Length`` before reading anything, or as soon as a streamed body passes the limit.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from toctou.lab.schemas import error_response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_BYTES", "AdmissionMiddleware"]

MAX_BODY_BYTES = 1 << 20


class AdmissionMiddleware:
    """Let at most ``limit`` requests (except ``exempt`` paths) into ``app`` at once."""

    __slots__ = ("app", "exempt", "limit", "slots", "timeout_s")

    def __init__(
        self, app: ASGIApp, *, limit: int, timeout_s: float, exempt: frozenset[str]
    ) -> None:
        self.app = app
        self.limit = limit
        self.timeout_s = timeout_s
        self.exempt = exempt
        self.slots = asyncio.Semaphore(limit)  # binds to the running loop on first wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        received = await _read_request(scope, receive)
        if received is None:
            await error_response(413, "body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")(
                scope, receive, send
            )
            return
        if received[-1]["type"] == "http.disconnect":
            return  # the client left before its request was complete: nothing to answer
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.slots.acquire()
        except TimeoutError:
            await self._busy(scope, receive, send)
            return
        try:
            await self.app(scope, _replay(received, receive), send)
        finally:
            self.slots.release()

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            503,
            "busy",
            f"all {self.limit} database slots of this worker stayed busy for "
            f"{self.timeout_s:g} s; try again",
        )
        response.headers["Retry-After"] = "1"
        await response(scope, receive, send)


async def _read_request(scope: Scope, receive: Receive) -> list[Message] | None:
    """Every ``http.request`` message up to the last one (or a disconnect); None: too large."""
    for name, value in scope["headers"]:
        declared = value.strip()
        if name == b"content-length" and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return None
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return None
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands back ``messages`` first, then reads on (for the disconnect)."""
    pending = iter(messages)

    async def replay() -> Message:
        for message in pending:
            return message
        return await receive()

    return replay
