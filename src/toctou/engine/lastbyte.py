"""HTTP/1.1 techniques: ``naive``, ``seed-style`` and ``last-byte`` synchronisation.

* ``naive`` opens a fresh connection per request at release time and sends everything at once,
  so TCP handshakes spread the batch out (the baseline to beat).
* ``seed-style`` is what the seed demo's client did: one connection already warm (it was used for
  the reset and status reads), the rest opened at release time.
* ``last-byte`` opens and warms one connection per request first, writes every request but its
  final byte, waits at the gate, then writes all final bytes back to back (TCP_NODELAY is on for
  asyncio sockets, so each leaves at once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence

from toctou.engine.http1 import encode_request, read_response
from toctou.engine.plan import RacePlan, RaceRequest
from toctou.engine.result import Attempt
from toctou.engine.target import Connection, Origin, open_connection
from toctou.engine.timing import server_arrival_ns
from toctou.errors import TargetError

__all__ = ["run_http1", "send_one"]

PROTOCOL = "HTTP/1.1"
_ALPN = ["http/1.1"]


async def _connect(plan: RacePlan, request: RaceRequest) -> Connection:
    return await open_connection(
        Origin.of(request.url), alpn=_ALPN, insecure=plan.insecure, timeout_s=plan.timeouts.connect
    )


async def _exchange(
    plan: RacePlan,
    index: int,
    request: RaceRequest,
    conn: Connection,
    released_ns: int,
    max_body: int | None = None,
) -> Attempt:
    deadline = time.monotonic() + plan.timeouts.response
    cap = plan.max_body_bytes if max_body is None else max_body
    try:
        response = await read_response(
            conn.reader, method=request.method, deadline=deadline, max_body=cap
        )
    finally:
        await conn.aclose()
    body = bytes(response.body or b"")
    return Attempt(
        index=index,
        connection=index,
        protocol=PROTOCOL,
        status=response.status,
        headers=response.headers,
        body=body.decode("utf-8", errors="replace"),
        body_size=response.body_size,
        body_truncated=response.truncated,
        error=response.error,
        connected_ns=conn.connected_ns,
        released_ns=released_ns,
        first_byte_ns=response.first_byte_ns,
        completed_ns=response.completed_ns,
        server_arrival_ns=server_arrival_ns(response.headers),
    )


def _failed(index: int, error: str) -> Attempt:
    return Attempt(index=index, connection=index, protocol=PROTOCOL, error=error)


async def send_one(
    plan: RacePlan, request: RaceRequest, index: int = 0, *, max_body: int | None = None
) -> Attempt:
    """One request on a fresh connection, start to finish (resets, probes, baselines, naive).

    ``max_body``: the body cap for this response, if not the plan's (a probe's state read).
    """
    try:
        conn = await _connect(plan, request)
    except TargetError as exc:
        return _failed(index, str(exc))
    try:
        wire = encode_request(request)
        released = time.perf_counter_ns()  # read before the write: the server cannot be earlier
        conn.writer.write(wire)
        await conn.writer.drain()
    except OSError as exc:
        await conn.aclose()
        return _failed(index, f"send failed: {exc}")
    return await _exchange(plan, index, request, conn, released, max_body)


async def _pre_send(conn: Connection, wire: bytes) -> None:
    conn.writer.write(wire[:-1])
    await conn.writer.drain()


async def _last_byte(plan: RacePlan) -> list[Attempt]:
    requests = plan.requests
    wires = [encode_request(r) for r in requests]
    opened = await asyncio.gather(*(_connect(plan, r) for r in requests), return_exceptions=True)
    attempts: list[Attempt | None] = [None] * len(requests)
    ready: dict[int, Connection] = {}
    for i, conn in enumerate(opened):
        if isinstance(conn, Connection):
            ready[i] = conn
        else:
            attempts[i] = _failed(i, str(conn))
    sent = await asyncio.gather(
        *(_pre_send(c, wires[i]) for i, c in ready.items()), return_exceptions=True
    )
    for i, outcome in zip(list(ready), sent, strict=True):
        if isinstance(outcome, BaseException):
            await ready.pop(i).aclose()
            attempts[i] = _failed(i, f"connection lost before the gate: {outcome}")
    await asyncio.sleep(plan.gate_wait_ms / 1000)
    released: dict[int, int] = {}
    async with asyncio.TaskGroup() as group:
        for offset, indexes in _release_groups(requests, ready):
            if offset:
                await asyncio.sleep(offset / 1000)
            for i in indexes:  # the gate: final bytes back to back, no await in between
                released[i] = time.perf_counter_ns()
                ready[i].writer.write(wires[i][-1:])
            for i in indexes:
                group.create_task(
                    _store(attempts, i, _exchange(plan, i, requests[i], ready[i], released[i]))
                )
    return [a for a in attempts if a is not None]


def _release_groups(
    requests: Sequence[RaceRequest], ready: dict[int, Connection]
) -> list[tuple[float, list[int]]]:
    """Ready requests grouped by send offset, as delays between consecutive groups."""
    by_offset: dict[float, list[int]] = {}
    for i in ready:
        by_offset.setdefault(requests[i].offset_ms, []).append(i)
    groups, previous = [], 0.0
    for offset in sorted(by_offset):
        groups.append((offset - previous, by_offset[offset]))
        previous = offset
    return groups


async def _store(attempts: list[Attempt | None], index: int, exchange: Awaitable[Attempt]) -> None:
    attempts[index] = await exchange


async def _naive(plan: RacePlan, warm_first: bool) -> list[Attempt]:
    requests = plan.requests
    warm: Connection | None = None
    if warm_first:
        try:
            warm = await _connect(plan, requests[0])
        except TargetError as exc:
            rest = await asyncio.gather(
                *(send_one(plan, r, i) for i, r in enumerate(requests) if i)
            )
            return [_failed(0, str(exc)), *rest]

    async def first_on_warm() -> Attempt:
        assert warm is not None
        wire = encode_request(requests[0])
        released = time.perf_counter_ns()
        warm.writer.write(wire)
        return await _exchange(plan, 0, requests[0], warm, released)

    async def delayed(i: int, request: RaceRequest) -> Attempt:
        if request.offset_ms:
            await asyncio.sleep(request.offset_ms / 1000)
        if i == 0 and warm is not None:
            return await first_on_warm()
        return await send_one(plan, request, i)

    return list(await asyncio.gather(*(delayed(i, r) for i, r in enumerate(requests))))


async def run_http1(plan: RacePlan) -> list[Attempt]:
    """Send one batch with the plan's HTTP/1.1 technique; attempts come back in request order."""
    if plan.technique == "last-byte":
        return await _last_byte(plan)
    return await _naive(plan, warm_first=plan.technique == "seed-style")
