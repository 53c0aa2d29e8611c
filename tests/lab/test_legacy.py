"""The seed's own API: its client sees 10 sold versus 1 sold, and the server stays responsive."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import httpx

from tests.lab.helpers import audit
from toctou.lab.process import LabProcess


async def seed_attack(base_url: str, endpoint: str) -> tuple[int, int, int]:
    """What the seed's attack.py does: reset, status, 10 x POST over one client, status."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        assert (await client.get("/reset")).json() == {"message": "Stock reset to 1"}
        start = (await client.get("/status")).json()
        replies = await asyncio.gather(*(client.post(f"/{endpoint}") for _ in range(10)))
        assert {r.status_code for r in replies} == {200}
        successes = sum(r.json()["status"] == "success" for r in replies)
        final = (await client.get("/status")).json()
    assert start == {"item": "Limited Edition GPU", "stock": 1}
    return start["stock"], successes, final["stock"]


def test_seed_client_sees_ten_sold_on_the_vulnerable_route(sqlite_lab: LabProcess) -> None:
    assert asyncio.run(seed_attack(sqlite_lab.base_url, "buy-vulnerable")) == (1, 10, 0)
    report = audit(sqlite_lab, 1)
    assert report["items"][0]["units_sold"] == 10
    assert not report["holds"]


def test_seed_client_sees_one_sold_on_the_secure_routes(sqlite_lab: LabProcess) -> None:
    for endpoint in ("buy-secure", "buy-secure-lock"):
        assert asyncio.run(seed_attack(sqlite_lab.base_url, endpoint)) == (1, 1, 0)
        assert audit(sqlite_lab, 1)["holds"]


def test_seed_fail_answer_has_the_seed_shape(sqlite_lab: LabProcess) -> None:
    httpx.get(f"{sqlite_lab.base_url}/reset")
    first = httpx.post(f"{sqlite_lab.base_url}/buy-secure")
    second = httpx.post(f"{sqlite_lab.base_url}/buy-secure")
    assert first.json() == {"status": "success", "message": "Item purchased!"}
    assert (second.status_code, second.json()) == (
        200,
        {"status": "fail", "message": "Out of stock"},
    )


def _burst(base_url: str, count: int) -> int:
    """200 buys the way the seed's attack.py sends its 10: gather over one httpx client."""

    async def send() -> list[int]:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
            replies = await asyncio.gather(*(client.post("/buy-vulnerable") for _ in range(count)))
        return [r.status_code for r in replies]

    return asyncio.run(send()).count(200)


def _probe_health(base_url: str, seconds: float) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base_url, timeout=5) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    return latencies


def test_health_stays_responsive_during_a_200_request_burst(sqlite_lab: LabProcess) -> None:
    """The seed froze a worker for 30 s per request beyond its pool of 15; the lab must not.

    The burst runs in another process so the probe's timings are not the burst client's.
    """
    httpx.get(f"{sqlite_lab.base_url}/reset")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        burst = pool.submit(_burst, sqlite_lab.base_url, 200)
        latencies = _probe_health(sqlite_lab.base_url, 2.0)
        answered = burst.result(timeout=60)
    assert answered == 200
    # Each burst request holds a pooled connection for the seed's 100 ms, so requests queue for
    # the pool the whole time; /health touches no database and must not wait behind them.
    assert len(latencies) > 20
    assert max(latencies) < 50, sorted(latencies)[-5:]
