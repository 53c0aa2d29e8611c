"""The lab stays responsive: /health is answered while 200 requests queue on one route.

The seed's ``async def`` routes with a synchronous session blocked the event loop, and with more
requests in flight than its pool held it froze a worker for 30 s per extra request. Here each
route of the lab takes a burst of 200 requests on fresh connections, all at once (as the seed's
client sends them), from another process; meanwhile this process asks /health on one keep-alive
connection every few milliseconds. The test asserts the mechanism, by order: probes are sent
*and answered* while the burst is still being served, so /health does not wait behind the
queue. How fast it answers is measured in ``benchmarks/responsive.py`` (no wall-clock bound
here: a busy 2-core machine would make one flaky).
"""

from __future__ import annotations

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
ANSWERED_DURING = 5  # /health probes that must be answered before the burst's last answer
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


def _probe_while(base_url: str, burst: Future[tuple[int, float, float]]) -> int:
    """How many /health probes were sent and answered while the burst was in flight (by the
    wall clock both processes read: an order of events on one host, not a duration)."""
    answered: list[tuple[float, float]] = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while not burst.done():
            sent = time.time()
            assert client.get("/health").status_code == 200
            answered.append((sent, time.time()))
            time.sleep(0.005)
    served, began, ended = burst.result()
    assert served == BURST
    return sum(began <= sent and done < ended for sent, done in answered)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_health_is_answered_while_a_200_request_burst_is_served(
    lab: LabProcess, burster: ProcessPoolExecutor, method: str, path: str
) -> None:
    item = new_item_id()
    reset(lab, item, 20)  # some purchases sell, most are rejected: both paths run
    httpx.get(f"{lab.base_url}/reset")  # the seed's item 1 for its own routes
    body: dict[str, Any] | None = None
    if path.startswith("/inventory/") and method == "POST":
        body = {"item_id": item, "quantity": 1}
    raw = json.dumps(body).encode() if body else b""
    url = lab.base_url + path.format(item=item)
    during = _probe_while(lab.base_url, burster.submit(_burst, url, method, raw))
    assert during >= ANSWERED_DURING, (
        f"only {during} /health probe(s) were answered while the burst was served: "
        "/health waits behind the queued requests"
    )
