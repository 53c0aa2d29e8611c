"""The lab stays responsive: /health answers within 50 ms while 200 requests hit one route.

The seed's ``async def`` routes with a synchronous session blocked the event loop, and with more
requests in flight than its pool held it froze a worker for 30 s per extra request. Here each
route of the lab takes a burst of 200 requests on fresh connections, all at once (as the seed's
client sends them), from another process, so the probe's timings are not the burst client's;
meanwhile this process asks /health on one keep-alive connection every few milliseconds.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, new_item_id, start_lab
from tests.lab.helpers import reset
from toctou.engine import RacePlan, RaceRequest, run_race
from toctou.lab.process import LabProcess

BURST = 200
LIMIT_MS = 50.0
STRATEGIES = ["vulnerable", "atomic", "lock", "optimistic", "serializable", "constraint", "mutex"]
# (method, path) with "{item}" for a fresh item; POSTs to /inventory/... carry a purchase body.
ROUTES = [
    ("POST", "/buy-vulnerable"),
    ("POST", "/buy-secure"),
    ("POST", "/buy-secure-lock"),
    ("GET", "/status"),
    *(("POST", f"/inventory/{name}/purchase") for name in STRATEGIES),
    ("GET", "/inventory/items/{item}"),
    ("GET", "/lab/audit?item_id={item}"),
]


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    yield from start_lab(request.param, 1)


@pytest.fixture(scope="module")
def burster() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(time.sleep, 0).result()  # the process is up before any probe starts
        yield pool


def _burst(url: str, method: str, body: bytes) -> tuple[int, float, float]:
    """Send BURST copies on fresh connections at once; (answers, wall start, wall end)."""
    headers = (("Content-Type", "application/json"),) if body else ()
    plan = RacePlan.repeat(RaceRequest(url, method, headers, body), BURST, technique="naive")
    started = time.time()
    attempts = run_race(plan).rounds[0].attempts
    return sum(a.status is not None for a in attempts), started, time.time()


def _probe_while(base_url: str, burst: Future[tuple[int, float, float]]) -> list[float]:
    """/health latencies (ms) of probes sent while the burst was in flight."""
    samples: list[tuple[float, float]] = []
    # A full collection in this (long-lived) process would count as server latency.
    gc.disable()
    try:
        with httpx.Client(base_url=base_url, timeout=5) as client:
            while not burst.done():
                sent, started = time.time(), time.perf_counter()
                assert client.get("/health").status_code == 200
                samples.append((sent, (time.perf_counter() - started) * 1000))
                time.sleep(0.005)
    finally:
        gc.enable()
    answered, began, ended = burst.result()
    assert answered == BURST
    return sorted(ms for sent, ms in samples if began <= sent <= ended)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_health_answers_within_50_ms_during_a_200_request_burst(
    lab: LabProcess, burster: ProcessPoolExecutor, method: str, path: str
) -> None:
    """Every probe of a burst under 50 ms; a burst with one slower probe is run once more.

    On this shared 2-core VM the slowest probe of a burst is 10-30 ms, but about one probe in a
    few thousand lands on a scheduler hiccup of another process (one reached 56 ms in a full
    CI run): a second burst tells that apart from a lab that stalls, which fails both times.
    """
    slowest: list[list[float]] = []
    for _ in range(2):
        item = new_item_id()
        reset(lab, item, 20)  # some purchases sell, most are rejected: both paths run
        httpx.get(f"{lab.base_url}/reset")  # the seed's item 1 for its own routes
        body: dict[str, Any] | None = None
        if path.startswith("/inventory/") and method == "POST":
            body = {"item_id": item, "quantity": 1}
        raw = json.dumps(body).encode() if body else b""
        url = lab.base_url + path.format(item=item)
        latencies = _probe_while(lab.base_url, burster.submit(_burst, url, method, raw))
        assert len(latencies) >= 5, "the probe did not run while the burst was in flight"
        if latencies[-1] < LIMIT_MS:
            return
        slowest.append(latencies[-5:])
    pytest.fail(f"/health took {LIMIT_MS:g} ms or more in both bursts; slowest (ms): {slowest}")
