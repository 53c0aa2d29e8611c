"""Admission: one database slot per pooled connection; the rest queue, and a long wait is a 503."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.conftest import new_item_id
from tests.lab.helpers import audit, reset
from toctou.lab.admission import AdmissionMiddleware
from toctou.lab.process import LabProcess, serve_lab
from toctou.lab.timing import parse_server_timing


@pytest.fixture(scope="module")
def narrow_lab() -> Iterator[LabProcess]:
    """One slot, and a queue that gives up after 0.3 s."""
    with serve_lab(env={"TOCTOU_POOL_SIZE": "1", "TOCTOU_QUEUE_TIMEOUT_S": "0.3"}) as lab:
        yield lab


def test_a_request_queued_past_the_timeout_gets_503_and_changes_nothing(
    narrow_lab: LabProcess,
) -> None:
    item = new_item_id()
    reset(narrow_lab, item, 5)
    url = f"{narrow_lab.base_url}/inventory/atomic/purchase"
    body = {"item_id": item, "quantity": 1}
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            httpx.post, url, json=body, headers={"X-Race-Window-Ms": "1000"}, timeout=10
        )
        time.sleep(0.3)  # the slow purchase holds the only slot for 1 s
        started = time.perf_counter()
        health = httpx.get(f"{narrow_lab.base_url}/health")
        health_s = time.perf_counter() - started
        sent = time.time_ns()
        busy = httpx.post(url, json=body, timeout=10)
        assert slow.result().status_code == 201
    assert health.status_code == 200
    assert health_s < 0.5  # /health never queues
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error"] == "busy"
    stamp = parse_server_timing(busy.headers["server-timing"])
    assert stamp is not None
    assert stamp.arrival_ns - sent < 0.2e9  # when it arrived, not when the queue gave up
    report = audit(narrow_lab, item)
    assert report["holds"]
    assert report["items"][0]["units_sold"] == 1


def test_requests_beyond_the_slots_wait_their_turn(narrow_lab: LabProcess) -> None:
    item = new_item_id()
    reset(narrow_lab, item, 5)
    url = f"{narrow_lab.base_url}/inventory/vulnerable/purchase"
    body = {"item_id": item, "quantity": 1}
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: httpx.post(url, json=body, timeout=10), range(3)))
    # One at a time, the vulnerable flow cannot lose an update: every sale counts.
    assert [r.status_code for r in replies] == [201, 201, 201]
    assert audit(narrow_lab, item)["items"][0]["stock"] == 2


async def test_a_client_gone_before_its_body_ended_never_reaches_the_app() -> None:
    """In process: a request whose body never completes takes no slot and runs no handler."""
    called: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope["path"])

    gate = AdmissionMiddleware(app, limit=1, timeout_s=1, exempt=frozenset())
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"item_id"', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        raise AssertionError(f"nothing should be sent to a client that left: {message}")

    scope: Scope = {"type": "http", "path": "/inventory/atomic/purchase", "headers": []}
    await gate(scope, receive, send)
    assert called == []
    assert not gate.slots.locked()  # the one slot is still free
