"""The coupon scenario: every strategy redeems within the limit one at a time, limits above one
under a race, codes compared exactly on every backend, and bad input changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, start_lab
from tests.lab.helpers import audit_scenario, reset_scenario, send_together
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.coupon.strategies import STRATEGIES

ALL = list(STRATEGIES)


def post(lab: LabProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{lab.base_url}{path}", timeout=30, **kwargs)


def reset(lab: LabProcess, **fields: Any) -> dict[str, Any]:
    return reset_scenario(lab, "coupon", **fields)


def audit(lab: LabProcess, **params: str) -> dict[str, Any]:
    return audit_scenario(lab, "coupon", **params)


def code_state(lab: LabProcess, code: str) -> dict[str, Any]:
    reply = httpx.get(f"{lab.base_url}/coupon/codes/{code}", timeout=30)
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def redeem(lab: LabProcess, strategy: str, code: str, **fields: Any) -> httpx.Response:
    return post(lab, f"/coupon/{strategy}/redeem", json={"code": code, **fields})


@pytest.fixture(scope="module", params=BACKENDS)
def any_lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    """A one-worker lab on each backend in turn."""
    yield from start_lab(request.param, 1)


@pytest.mark.parametrize("strategy", ALL)
def test_each_strategy_redeems_up_to_the_limit_then_refuses(
    sqlite_lab: LabProcess, strategy: str
) -> None:
    assert reset(sqlite_lab, code="TWICE", max_uses=2)["uses"] == 0
    first = redeem(sqlite_lab, strategy, "TWICE", order_ref="order-7")
    second = redeem(sqlite_lab, strategy, "TWICE")
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    for reply in (first, second):
        body = reply.json()
        assert body["effect"] == f"redemption {body['redemption']['id']}"
        assert body["redemption"]["code"] == "TWICE"
        assert body["redemption"]["strategy"] == strategy
    assert first.json()["redemption"]["order_ref"] == "order-7"
    assert second.json()["redemption"]["order_ref"].startswith("order-")  # made up
    third = redeem(sqlite_lab, strategy, "TWICE")
    assert third.status_code == 409, third.text
    assert third.json()["status"] == "rejected"
    assert third.json()["reason"] == "limit_reached"
    assert code_state(sqlite_lab, "TWICE") == {
        "code": "TWICE",
        "max_uses": 2,
        "uses": 2,
        "redemptions": 2,
        "over_limit": 0,
        "uncounted": 0,
        "damage": 0,
    }
    found = audit(sqlite_lab, code="TWICE")
    assert found["holds"]
    assert (found["damage"], found["effects"]) == (0, 2)


def test_unique_records_each_use_number_once(sqlite_lab: LabProcess) -> None:
    reset(sqlite_lab, code="SLOTS", max_uses=3)
    slots = [redeem(sqlite_lab, "unique", "SLOTS").json()["redemption"]["slot"] for _ in range(3)]
    assert slots == [1, 2, 3]
    assert redeem(sqlite_lab, "atomic", "SLOTS").json()["reason"] == "limit_reached"


def test_vulnerable_overruns_the_limit_and_the_audit_says_how(sqlite_lab: LabProcess) -> None:
    reset(sqlite_lab, code="RACED", max_uses=1)
    replies = send_together(
        f"{sqlite_lab.base_url}/coupon/vulnerable/redeem",
        10,
        body={"code": "RACED"},
        headers={"X-Race-Window-Ms": "50"},
    )
    won = [r for r in replies if r.status == 201]
    assert len(won) > 1, replies
    state = code_state(sqlite_lab, "RACED")
    assert state["redemptions"] == len(won)
    assert state["over_limit"] == len(won) - 1
    assert state["uncounted"] == len(won) - state["uses"]
    assert state["damage"] == max(state["over_limit"], state["uncounted"]) > 0
    found = audit(sqlite_lab, code="RACED")
    assert not found["holds"]
    assert {i["name"]: i["holds"] for i in found["invariants"]} == {
        "within_limit": False,
        "uses_counted": state["uses"] == len(won),
    }


@pytest.mark.parametrize("strategy", ["atomic", "unique", "lock"])
def test_a_limit_above_one_holds_under_a_race(any_lab: LabProcess, strategy: str) -> None:
    """Exactly max_uses of a burst win; `unique` retries a slot taken under it with the next."""
    reset(any_lab, code="THRICE", max_uses=3)
    replies = send_together(
        f"{any_lab.base_url}/coupon/{strategy}/redeem",
        10,
        body={"code": "THRICE"},
        headers={"X-Race-Window-Ms": "20"},
    )
    assert sorted(r.status or 0 for r in replies) == [201] * 3 + [409] * 7, replies
    assert {r.body["reason"] for r in replies if r.status == 409} == {"limit_reached"}
    state = code_state(any_lab, "THRICE")
    assert (state["uses"], state["redemptions"], state["damage"]) == (3, 3, 0)


@pytest.mark.parametrize("asked", ["welcome10", "WELCOME10 ", " WELCOME10", "WELCOME1O"])
def test_codes_are_compared_exactly_on_every_backend(any_lab: LabProcess, asked: str) -> None:
    """MariaDB's default collation would find WELCOME10 for 'welcome10 '; the lab's columns
    compare bytes there too."""
    reset(any_lab)
    reply = redeem(any_lab, "atomic", asked)
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == "code_not_found"
    assert httpx.get(f"{any_lab.base_url}/coupon/codes/{asked}").status_code == 404
    assert audit(any_lab)["effects"] == 0


# Bad input: a clear 4xx, and the data exactly as before.

BAD_CODE = "BADIN"


@pytest.fixture
def lab(sqlite_lab: LabProcess) -> Iterator[LabProcess]:
    """The shared lab with code BADIN used up (1 of 1); the audit must not change in the test."""
    reset(sqlite_lab, code=BAD_CODE, max_uses=1)
    assert redeem(sqlite_lab, "atomic", BAD_CODE).status_code == 201
    before = audit(sqlite_lab)
    yield sqlite_lab
    assert audit(sqlite_lab) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"code": ""}, "code", id="code-empty"),
        pytest.param({"code": "X" * 33}, "code", id="code-too-long"),
        pytest.param({"code": 10}, "code", id="code-number"),
        pytest.param({"code": None}, "code", id="code-null"),
        pytest.param({"code": ["WELCOME10"]}, "code", id="code-list"),
        pytest.param({"code": "WELCOME\x0010"}, "code", id="code-nul"),
        pytest.param({"code": "WELCOME10\n"}, "code", id="code-newline"),
        pytest.param({}, "code", id="code-missing"),
        pytest.param({"code": BAD_CODE, "order_ref": ""}, "order_ref", id="order-empty"),
        pytest.param({"code": BAD_CODE, "order_ref": "o" * 65}, "order_ref", id="order-too-long"),
        pytest.param({"code": BAD_CODE, "order_ref": 1}, "order_ref", id="order-number"),
        pytest.param({"code": BAD_CODE, "discount": 100}, "discount", id="unknown-field"),
    ],
)
@pytest.mark.parametrize("strategy", ["vulnerable", "unique"])
def test_invalid_redeem_body_is_422(
    lab: LabProcess, body: dict[str, Any], field: str, strategy: str
) -> None:
    reply = post(lab, f"/coupon/{strategy}/redeem", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert error["details"][0]["loc"] == ["body", field]


@pytest.mark.parametrize("body", [b"", b"[]", b'"WELCOME10"', b"{", b'{"code": "\\ud800"}'])
def test_body_that_is_not_a_redemption_is_4xx(lab: LabProcess, body: bytes) -> None:
    reply = post(
        lab, "/coupon/atomic/redeem", content=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code in (400, 422), reply.text
    assert reply.json()["error"] in ("invalid_request", "malformed_json")


@pytest.mark.parametrize("strategy", ALL)
def test_unknown_code_is_404_and_used_up_is_409_for_every_strategy(
    lab: LabProcess, strategy: str
) -> None:
    missing = redeem(lab, strategy, "NOSUCHCODE")
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"] == "code_not_found"
    used_up = redeem(lab, strategy, BAD_CODE)
    assert used_up.status_code == 409, used_up.text
    assert used_up.json()["reason"] == "limit_reached"


def test_unknown_strategy_is_404_naming_the_valid_ones(lab: LabProcess) -> None:
    reply = redeem(lab, "yolo", BAD_CODE)
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_strategy"
    assert reply.json()["valid"] == ALL


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/coupon/codes/NOSUCHCODE", 404, "code_not_found"),
        (f"/coupon/codes/{'X' * 33}", 422, "invalid_request"),
        ("/lab/audit?scenario=coupon&code=NOSUCHCODE", 404, "code_not_found"),
        (f"/lab/audit?scenario=coupon&code={'X' * 33}", 422, "invalid_request"),
        ("/lab/audit?scenario=coupon&colour=red", 422, "invalid_request"),
    ],
)
def test_bad_reads_are_4xx(lab: LabProcess, path: str, status: int, error: str) -> None:
    reply = httpx.get(f"{lab.base_url}{path}")
    assert reply.status_code == status, reply.text
    assert reply.json()["error"] == error


@pytest.mark.parametrize(
    "fields",
    [
        {"code": BAD_CODE, "max_uses": 0},
        {"code": BAD_CODE, "max_uses": "2"},
        {"code": BAD_CODE, "max_uses": 10**7},
        {"code": ""},
        {"code": BAD_CODE, "uses": 0},
    ],
)
def test_invalid_reset_is_422(lab: LabProcess, fields: dict[str, Any]) -> None:
    reply = post(lab, "/lab/reset", json={"scenario": "coupon", **fields})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"
