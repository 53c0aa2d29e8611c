"""A small synchronised burst client: one warmed connection per request, released at once.

It stands in for the race engine (``toctou.engine``, a later step) wherever the lab's demo and tests
need truly concurrent requests. Each request gets its own keep-alive connection, opened and warmed
before a shared gate opens, so the burst is not spread out by TCP handshakes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Reply", "Shot", "afire", "fire"]


@dataclass(frozen=True, slots=True)
class Shot:
    method: str
    path: str
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int | None
    body: Any
    elapsed_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


async def afire(
    base_url: str,
    shots: Sequence[Shot],
    *,
    warm_path: str = "/health",
    timeout_s: float = 60.0,
) -> list[Reply]:
    """Send every shot at once, each on its own pre-opened connection; answers in shot order."""
    gate = asyncio.Event()
    replies: list[Reply | None] = [None] * len(shots)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def one(index: int, shot: Shot, client: httpx.AsyncClient) -> None:
        await gate.wait()
        started = time.perf_counter()
        try:
            response = await client.request(
                shot.method, shot.path, json=shot.json, headers=dict(shot.headers)
            )
        except httpx.HTTPError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            replies[index] = Reply(None, None, elapsed, f"{type(exc).__name__}: {exc}")
            return
        elapsed = (time.perf_counter() - started) * 1000
        replies[index] = Reply(response.status_code, _decode(response), elapsed)

    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits) for _ in shots
    ]
    try:
        await asyncio.gather(*(c.get(warm_path) for c in clients))
        async with asyncio.TaskGroup() as group:
            for index, (shot, client) in enumerate(zip(shots, clients, strict=True)):
                group.create_task(one(index, shot, client))
            await asyncio.sleep(0)  # let every task reach the gate
            gate.set()
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return [r for r in replies if r is not None]


def fire(base_url: str, shots: Sequence[Shot], **options: Any) -> list[Reply]:
    """Blocking twin of :func:`afire`."""
    return asyncio.run(afire(base_url, shots, **options))
