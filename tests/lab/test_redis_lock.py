"""The Redis lock strategies: the fixed one never oversells across four workers, the short lease
does; the lock's key is released, only by its holder, and fenced by the UPDATE; labs sharing
one Redis never contend; without Redis (or with one that does not answer) a clear 503."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import BACKENDS, new_item_id, require_redis, start_lab
from tests.lab.helpers import (
    Reply,
    assert_audit_matches_replies,
    audit,
    audit_scenario,
    race,
    reset,
    reset_scenario,
    send_together,
)
from toctou.catalogue import fetch_catalogue
from toctou.lab.config import Settings
from toctou.lab.process import LabProcess, free_port, serve_lab
from toctou.lab.redislock import LEASE_MS, lock_key, lock_namespace

FIXED, SHORT = "redis-lock", "redis-lock-short-ttl"
BUYERS = 12
ROUNDS = 5
WINDOW_MS = 50  # longer than the short lease (20 ms), far shorter than the fixed one (10 s)
HELD_MS = 1000  # the widest race window: long enough to look at the key while it is held
LOCK_WAIT_S = 0.5  # TOCTOU_REDIS_LOCK_WAIT_S of the single-worker labs below


# --- labs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def lab4(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    """Four workers on each backend, all on the session's Redis."""
    require_redis()
    yield from start_lab(request.param, 4)


def _sqlite_lab(data_dir: Path) -> Iterator[LabProcess]:
    """One worker on a SQLite file in ``data_dir``, so the test knows its lock namespace."""
    env = {"TOCTOU_REDIS_LOCK_WAIT_S": str(LOCK_WAIT_S)}
    yield from start_lab("sqlite", 1, data_dir=data_dir, env=env)


def _namespace(data_dir: Path) -> str:
    return lock_namespace(Settings(data_dir=data_dir.resolve()).resolved_database_url())


@pytest.fixture(scope="module")
def one_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("one")


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("other")


@pytest.fixture(scope="module")
def one(one_dir: Path) -> Iterator[LabProcess]:
    require_redis()
    yield from _sqlite_lab(one_dir)


@pytest.fixture(scope="module")
def other(other_dir: Path) -> Iterator[LabProcess]:
    require_redis()
    yield from _sqlite_lab(other_dir)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(require_redis())
    yield connection
    connection.close()


# --- helpers --------------------------------------------------------------------------------


def withdraw_race(lab: LabProcess, strategy: str) -> list[Reply]:
    """``BUYERS`` withdrawals of account 1's whole balance (1000 cents), released together."""
    return send_together(
        f"{lab.base_url}/wallet/{strategy}/withdraw",
        BUYERS,
        body={"account_id": 1, "amount_cents": 1000},
        headers={"X-Race-Window-Ms": str(WINDOW_MS)},
    )


def purchase(lab: LabProcess, strategy: str, item: int, window_ms: float = 0) -> httpx.Response:
    return httpx.post(
        f"{lab.base_url}/inventory/{strategy}/purchase",
        json={"item_id": item},
        headers={"X-Race-Window-Ms": str(window_ms)},
        timeout=30,
    )


def wait_for_key(client: redis.Redis, key: str, answer: Future[httpx.Response]) -> Any:
    """Poll until ``key`` exists (its value) or the request has answered (None)."""
    while not answer.done():
        value = client.get(key)
        if value is not None:
            return value
        time.sleep(0.002)
    return None


# --- the claims, with four workers ----------------------------------------------------------


@pytest.mark.redis
def test_fixed_never_oversells_with_four_workers(lab4: LabProcess) -> None:
    for stock in [1] * ROUNDS + [3]:
        item = new_item_id()
        reset(lab4, item, stock)
        replies = race(lab4, FIXED, item_id=item, window_ms=WINDOW_MS, requests=BUYERS)
        assert sorted(r.status or 0 for r in replies) == [201] * stock + [409] * (BUYERS - stock)
        assert {r.body["reason"] for r in replies if r.status == 409} == {"out_of_stock"}
        report = audit(lab4, item)
        assert report["holds"], report
        assert report["items"][0]["stock"] == 0
        assert_audit_matches_replies(lab4, item, replies)


@pytest.mark.redis
def test_fixed_never_double_spends_with_four_workers(lab4: LabProcess) -> None:
    for _round in range(ROUNDS):
        reset_scenario(lab4, "wallet")
        replies = withdraw_race(lab4, FIXED)
        assert sorted(r.status or 0 for r in replies) == [201] + [409] * (BUYERS - 1)
        report = audit_scenario(lab4, "wallet")
        assert report["holds"], report
        assert report["effects"] == 1


@pytest.mark.redis
def test_short_lease_oversells_with_four_workers(lab4: LabProcess) -> None:
    for _round in range(ROUNDS):
        item = new_item_id()
        reset(lab4, item, 1)
        replies = race(lab4, SHORT, item_id=item, window_ms=WINDOW_MS, requests=BUYERS)
        assert [r for r in replies if r.status not in (201, 409)] == []
        assert_audit_matches_replies(lab4, item, replies)
        report = audit(lab4, item)
        if not report["holds"]:
            break
    assert report["items"][0]["oversold"] > 0, report
    assert sum(r.status == 201 for r in replies) > 1


@pytest.mark.redis
def test_short_lease_double_spends_with_four_workers(lab4: LabProcess) -> None:
    for _round in range(ROUNDS):
        reset_scenario(lab4, "wallet")
        replies = withdraw_race(lab4, SHORT)
        assert [r for r in replies if r.status not in (201, 409)] == []
        report = audit_scenario(lab4, "wallet")
        if report["damage"]:
            break
    assert report["damage"] == 1000 * (sum(r.status == 201 for r in replies) - 1) > 0, report


# --- the key: taken, released, fenced -------------------------------------------------------


@pytest.mark.redis
# Only the fixed lease: the short one (20 ms) can end before a poll on a busy machine sees it.
@pytest.mark.parametrize(("strategy", "lease_ms"), [(FIXED, LEASE_MS)])
def test_the_key_is_held_during_a_request_and_gone_after_it(
    one: LabProcess, one_dir: Path, client: redis.Redis, strategy: str, lease_ms: int
) -> None:
    item = new_item_id()
    key = lock_key(_namespace(one_dir), "inventory", "item", item)
    reset(one, item, 1)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(purchase, one, strategy, item, HELD_MS)
        token = wait_for_key(client, key, answer)
        pttl = client.pttl(key)
        assert answer.result().status_code == 201, answer.result().text
    assert len(token or "") == 32  # a random token of this holder's
    assert 0 < pttl <= lease_ms
    assert client.exists(key) == 0
    refused = purchase(one, strategy, item)
    assert refused.status_code == 409
    assert client.exists(key) == 0


@pytest.mark.redis
def test_the_release_deletes_only_its_own_lease(
    one: LabProcess, one_dir: Path, client: redis.Redis
) -> None:
    """Once its lease ran out and someone else holds the key, a holder leaves it alone."""
    item = new_item_id()
    key = lock_key(_namespace(one_dir), "inventory", "item", item)
    reset(one, item, 1)
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(purchase, one, FIXED, item, HELD_MS)
            assert wait_for_key(client, key, answer) is not None
            assert client.set(key, "someone-else", xx=True, px=60_000)  # its lease "ran out"
            assert answer.result().status_code == 201
        assert client.get(key) == b"someone-else"
    finally:
        client.delete(key)


@pytest.mark.redis
def test_a_holder_whose_lease_ran_out_cannot_oversell(
    one: LabProcess, one_dir: Path, client: redis.Redis
) -> None:
    """The conditional UPDATE fences the write: the first buyer read stock 1, lost its lease
    (the key deleted, as an expiry would) while a second buyer sold the unit; its UPDATE
    refuses, so the lease ending costs a 409, never an oversell."""
    item = new_item_id()
    key = lock_key(_namespace(one_dir), "inventory", "item", item)
    reset(one, item, 1)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(purchase, one, FIXED, item, HELD_MS)
        assert wait_for_key(client, key, first) is not None
        assert client.delete(key) == 1  # the lease "ran out" while the first buyer waits
        second = purchase(one, FIXED, item)
        assert second.status_code == 201, second.text
        refused = first.result()
    assert refused.status_code == 409, refused.text
    assert refused.json()["reason"] == "out_of_stock"
    report = audit(one, item)
    assert report["holds"], report
    assert (report["items"][0]["units_sold"], report["items"][0]["stock"]) == (1, 0)


@pytest.mark.redis
def test_two_labs_on_one_redis_do_not_contend(
    one: LabProcess, other: LabProcess, one_dir: Path, other_dir: Path, client: redis.Redis
) -> None:
    """A key held in one lab's namespace blocks that lab only (409 contention after
    TOCTOU_REDIS_LOCK_WAIT_S, nothing changed); the other lab sells the same item id."""
    assert _namespace(one_dir) != _namespace(other_dir)
    item = new_item_id()
    key = lock_key(_namespace(one_dir), "inventory", "item", item)
    reset(one, item, 1)
    reset(other, item, 1)
    assert client.set(key, "someone-else", nx=True, px=60_000)
    try:
        blocked = purchase(one, FIXED, item)
        assert blocked.status_code == 409, blocked.text
        assert blocked.json()["reason"] == "contention"
        assert key in blocked.json()["message"]
        assert audit(one, item)["items"][0]["stock"] == 1
        assert purchase(other, FIXED, item).status_code == 201
        assert client.get(key) == b"someone-else"
    finally:
        client.delete(key)


# --- without Redis --------------------------------------------------------------------------


REDIS_STRATEGIES = {
    ("inventory", FIXED),
    ("inventory", SHORT),
    ("wallet", FIXED),
    ("wallet", SHORT),
}
ACTIONS = [
    ("/inventory/{}/purchase", {"item_id": 1}),
    ("/wallet/{}/withdraw", {"account_id": 1, "amount_cents": 100}),
    ("/wallet/{}/transfer", {"from_account": 1, "to_account": 2, "amount_cents": 100}),
]


def _assert_503_and_unchanged(lab: LabProcess, retry_after: str | None, says: str) -> None:
    reset_scenario(lab, "inventory")
    reset_scenario(lab, "wallet")
    before = httpx.get(f"{lab.base_url}/lab/audit").json()
    for path, body in ACTIONS:
        for strategy in (FIXED, SHORT):
            reply = httpx.post(f"{lab.base_url}{path.format(strategy)}", json=body, timeout=30)
            assert reply.status_code == 503, reply.text
            assert reply.json()["error"] == "redis_unavailable"
            assert says in reply.json()["message"]
            assert reply.headers.get("Retry-After") == retry_after
    assert httpx.get(f"{lab.base_url}/lab/audit").json() == before


def test_without_redis_they_answer_503_and_the_catalogue_says_they_need_it() -> None:
    with serve_lab() as lab:
        _assert_503_and_unchanged(lab, None, "TOCTOU_REDIS_URL is not set")
        needing = {
            (name, s.name)
            for name, info in fetch_catalogue(lab.base_url).items()
            for s in info.strategies
            if s.needs
        }
        assert needing == REDIS_STRATEGIES
        listed = httpx.get(f"{lab.base_url}/strategies").json()
        assert {(s["scenario"], s["name"]) for s in listed if s["needs"] == ["redis"]} == needing
        assert httpx.post(f"{lab.base_url}/inventory/atomic/purchase", json={}).status_code == 201


def test_a_redis_that_does_not_answer_is_503_with_retry_after() -> None:
    with serve_lab(redis_url=f"redis://127.0.0.1:{free_port()}/0") as lab:
        _assert_503_and_unchanged(lab, "1", "TOCTOU_REDIS_URL")
