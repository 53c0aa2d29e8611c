"""The payment scenario: one charge per Idempotency-Key, replays byte for byte, a key reused with
another body refused, bursts of one key on every backend, and bad input changing nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, start_lab
from tests.lab.helpers import audit_scenario, reset_scenario
from toctou.engine import Attempt, RacePlan, RaceRequest, run_race
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.payment.strategies import STRATEGIES

ALL = list(STRATEGIES)
KEYED = ["check-then-insert", "key-row"]  # the two that look at the key at all
REPLAYED = "Idempotent-Replayed"


def charge(
    lab: LabProcess,
    strategy: str,
    key: str | None,
    *,
    amount: int = 1000,
    account: int = 1,
    **extra: Any,
) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return httpx.post(
        f"{lab.base_url}/payment/{strategy}/charge",
        json={"account_id": account, "amount_cents": amount, **extra},
        headers=headers,
        timeout=30,
    )


def audit(lab: LabProcess) -> dict[str, Any]:
    return audit_scenario(lab, "payment")


def key_view(lab: LabProcess, key: str) -> dict[str, Any]:
    reply = httpx.get(f"{lab.base_url}/payment/keys/{key}", timeout=30)
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def reset(lab: LabProcess) -> None:
    reset_scenario(lab, "payment")


def burst(
    lab: LabProcess,
    strategy: str,
    key: str,
    count: int = 10,
    window_ms: float = 50,
    account: int = 1,
) -> list[Attempt]:
    """``count`` copies of one charge, released together (last-byte sync)."""
    request = RaceRequest(
        f"{lab.base_url}/payment/{strategy}/charge",
        "POST",
        (
            ("Content-Type", "application/json"),
            ("Idempotency-Key", key),
            ("X-Race-Window-Ms", f"{window_ms:g}"),
        ),
        json.dumps({"account_id": account, "amount_cents": 1000}).encode(),
    )
    plan = RacePlan.repeat(request, count, technique="last-byte", gate_wait_ms=20)
    attempts = run_race(plan).rounds[0].attempts
    assert len(attempts) == count
    assert [a.error for a in attempts if a.error] == []
    return list(attempts)


@pytest.fixture
def lab(sqlite_lab: LabProcess) -> LabProcess:
    """The shared SQLite lab with the payment at its seed: account 1, no charges."""
    reset(sqlite_lab)
    assert audit(sqlite_lab)["effects"] == 0
    return sqlite_lab


@pytest.fixture
def unchanged(lab: LabProcess) -> Iterator[LabProcess]:
    """The seeded lab with one charge made (key "seen"); the audit must be the same after."""
    assert charge(lab, "key-row", "seen").status_code == 201
    before = audit(lab), key_view(lab, "seen")
    yield lab
    assert (audit(lab), key_view(lab, "seen")) == before


# --- the happy path and retries, one at a time ----------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
def test_a_first_charge_is_201_naming_its_charge(lab: LabProcess, strategy: str) -> None:
    reply = charge(lab, strategy, "order-7", amount=2500)
    assert reply.status_code == 201, reply.text
    assert REPLAYED not in reply.headers
    body = reply.json()
    charged = body["charge"]
    assert body == {
        "status": "charged",
        "effect": f"charge {charged['id']}",
        "charge": {
            "id": charged["id"],
            "account_id": 1,
            "amount_cents": 2500,
            "idempotency_key": "order-7",
            "strategy": strategy,
        },
    }
    assert [c["id"] for c in key_view(lab, "order-7")["charges"]] == [charged["id"]]
    found = audit(lab)
    assert (found["damage"], found["effects"], found["holds"]) == (0, 1, True)


@pytest.mark.parametrize("strategy", KEYED)
def test_a_retry_replays_the_first_answer_byte_for_byte(lab: LabProcess, strategy: str) -> None:
    first = charge(lab, strategy, "retry-me")
    again = [charge(lab, strategy, "retry-me") for _ in range(3)]
    assert first.status_code == 201, first.text
    for reply in again:
        assert reply.status_code == 201, reply.text
        assert reply.headers[REPLAYED] == "true"
        assert reply.content == first.content
    view = key_view(lab, "retry-me")
    assert len(view["charges"]) == 1
    assert view["duplicates"] == 0
    assert audit(lab)["effects"] == 1


def test_the_key_row_stores_the_answer_it_replays(lab: LabProcess) -> None:
    first = charge(lab, "key-row", "stored")
    assert key_view(lab, "stored")["stored"] == {
        "status_code": 201,
        "charge_id": first.json()["charge"]["id"],
    }
    assert key_view(lab, "never-used") == {
        "key": "never-used",
        "charges": [],
        "duplicates": 0,
        "stored": None,
    }


def test_vulnerable_charges_every_retry(lab: LabProcess) -> None:
    replies = [charge(lab, "vulnerable", "twice") for _ in range(2)]
    assert [r.status_code for r in replies] == [201, 201]
    assert replies[0].json()["effect"] != replies[1].json()["effect"]
    found = audit(lab)
    assert (found["damage"], found["effects"], found["holds"]) == (1, 2, False)
    assert found["duplicated_keys"] == [{"key": "twice", "charges": 2}]
    assert found["invariants"][0]["violations"] == ["key 'twice': 2 charges (1 duplicate)"]


@pytest.mark.parametrize("strategy", KEYED)
@pytest.mark.parametrize(
    "other", [{"amount": 1001}, {"account": 2}], ids=["other-amount", "other-account"]
)
def test_the_same_key_with_another_body_is_422_key_reused(
    lab: LabProcess, strategy: str, other: dict[str, int]
) -> None:
    first = charge(lab, strategy, "reused")
    before = audit(lab), key_view(lab, "reused")
    reply = charge(lab, strategy, "reused", **other)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "key_reused"
    assert set(reply.json()) == {"error", "message"}
    assert (audit(lab), key_view(lab, "reused")) == before
    assert charge(lab, strategy, "reused").content == first.content  # the key still replays


def test_different_keys_are_different_charges(lab: LabProcess) -> None:
    effects = {charge(lab, "key-row", key).json()["effect"] for key in ("a", "b", "A", "a/b")}
    assert len(effects) == 4
    assert len(key_view(lab, "a/b")["charges"]) == 1  # a slash is a key's character too
    assert audit(lab)["effects"] == 4


def test_a_reset_forgets_the_keys(lab: LabProcess) -> None:
    assert charge(lab, "key-row", "again", amount=500).status_code == 201
    reset(lab)
    assert key_view(lab, "again")["charges"] == []
    second = charge(lab, "key-row", "again", amount=700)  # no key_reused: the key is new again
    assert second.status_code == 201, second.text
    assert REPLAYED not in second.headers
    assert [c["amount_cents"] for c in key_view(lab, "again")["charges"]] == [700]


def test_a_key_of_255_characters_is_accepted(lab: LabProcess) -> None:
    key = "k" * 255
    assert charge(lab, "key-row", key).status_code == 201
    assert charge(lab, "key-row", key).headers[REPLAYED] == "true"
    assert len(key_view(lab, key)["charges"]) == 1


@pytest.mark.parametrize("strategy", ALL)
def test_an_unknown_account_is_404_and_leaves_the_key_free(lab: LabProcess, strategy: str) -> None:
    reply = charge(lab, strategy, "first-try", account=99)
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == "account_not_found"
    assert key_view(lab, "first-try") == {
        "key": "first-try",
        "charges": [],
        "duplicates": 0,
        "stored": None,
    }
    assert audit(lab)["effects"] == 0
    fixed = charge(lab, strategy, "first-try")  # the client fixes its request: it charges
    assert fixed.status_code == 201, fixed.text
    assert REPLAYED not in fixed.headers


# --- bursts of one key, on every backend ----------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def backend_lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    yield from start_lab(request.param, 2)


def test_a_burst_of_one_key_charges_once_with_the_key_row(backend_lab: LabProcess) -> None:
    reset(backend_lab)
    attempts = burst(backend_lab, "key-row", "burst")
    assert [a.status for a in attempts] == [201] * 10
    assert len({a.body for a in attempts}) == 1  # every caller gets the first's answer
    assert sorted(a.header(REPLAYED) or "first" for a in attempts) == ["first"] + ["true"] * 9
    found = audit(backend_lab)
    assert (found["damage"], found["effects"], found["holds"]) == (0, 1, True)


def test_a_burst_of_one_key_charges_many_with_check_then_insert(backend_lab: LabProcess) -> None:
    reset(backend_lab)
    attempts = burst(backend_lab, "check-then-insert", "burst")
    assert [a.status for a in attempts] == [201] * 10
    charged = {json.loads(a.body)["effect"] for a in attempts}
    found = audit(backend_lab)
    assert found["effects"] == len(charged) > 1
    assert found["damage"] == len(charged) - 1
    assert not found["holds"]


def test_a_burst_of_one_key_for_an_unknown_account_writes_nothing(
    backend_lab: LabProcess,
) -> None:
    """Each copy claims the key after the one before it rolled back: all 404, nothing kept."""
    reset(backend_lab)
    attempts = burst(backend_lab, "key-row", "nobody", account=99)
    assert [a.status for a in attempts] == [404] * 10
    assert key_view(backend_lab, "nobody")["stored"] is None
    assert audit(backend_lab)["effects"] == 0


def test_keys_differing_in_case_are_two_keys_on_every_backend(backend_lab: LabProcess) -> None:
    reset(backend_lab)
    replies = [charge(backend_lab, "key-row", key) for key in ("Order-1", "order-1")]
    assert [r.headers.get(REPLAYED) for r in replies] == [None, None]
    assert audit(backend_lab)["effects"] == 2


# --- bad input: a clear 4xx, and nothing changes --------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize(
    "key",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("k" * 256, id="256-characters"),
        pytest.param("two words", id="space"),
        pytest.param("tab\tkey", id="control"),
    ],
)
def test_a_bad_idempotency_key_is_422(
    unchanged: LabProcess, strategy: str, key: str | None
) -> None:
    reply = charge(unchanged, strategy, key)
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert "idempotency-key" in error["message"]


def test_a_non_ascii_key_is_422(unchanged: LabProcess) -> None:
    reply = httpx.post(
        f"{unchanged.base_url}/payment/key-row/charge",
        json={"amount_cents": 1000},
        headers=[(b"Idempotency-Key", "clé".encode("latin-1"))],
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"amount_cents": 0}, "amount_cents", id="amount-zero"),
        pytest.param({"amount_cents": -5}, "amount_cents", id="amount-negative"),
        pytest.param({"amount_cents": 10.5}, "amount_cents", id="amount-fractional"),
        pytest.param({"amount_cents": 10.0}, "amount_cents", id="amount-float"),
        pytest.param({"amount_cents": "10"}, "amount_cents", id="amount-string"),
        pytest.param({"amount_cents": True}, "amount_cents", id="amount-bool"),
        pytest.param({"amount_cents": 100_000_001}, "amount_cents", id="amount-over-max"),
        pytest.param({"amount_cents": 2**64}, "amount_cents", id="amount-2^64"),
        pytest.param({}, "amount_cents", id="amount-missing"),
        pytest.param({"amount_cents": 10, "account_id": 0}, "account_id", id="account-zero"),
        pytest.param({"amount_cents": 10, "account_id": "1"}, "account_id", id="account-string"),
        pytest.param({"amount_cents": 10, "account_id": 2**31}, "account_id", id="account-2^31"),
        pytest.param({"amount_cents": 10, "currency": "EUR"}, "currency", id="unknown-field"),
    ],
)
def test_a_bad_charge_body_is_422(
    unchanged: LabProcess, strategy: str, body: dict[str, Any], field: str
) -> None:
    reply = httpx.post(
        f"{unchanged.base_url}/payment/{strategy}/charge",
        json=body,
        headers={"Idempotency-Key": "seen"},
    )
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert any(field in d["loc"] for d in error["details"])


def test_an_unknown_strategy_is_404_naming_the_valid_ones(unchanged: LabProcess) -> None:
    reply = charge(unchanged, "hope", "seen")
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == "unknown_strategy"
    assert reply.json()["valid"] == ALL


@pytest.mark.parametrize("key", ["k" * 256, "two%20words"], ids=["256-characters", "space"])
def test_a_bad_key_to_look_up_is_422(unchanged: LabProcess, key: str) -> None:
    reply = httpx.get(f"{unchanged.base_url}/payment/keys/{key}")
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'"text"', b'{"amount_cents": 1000,}'],
    ids=["cut", "list", "str", "comma"],
)
def test_a_body_that_is_not_a_charge_is_4xx(unchanged: LabProcess, body: bytes) -> None:
    reply = httpx.post(
        f"{unchanged.base_url}/payment/key-row/charge",
        content=body,
        headers={"Idempotency-Key": "seen", "Content-Type": "application/json"},
    )
    assert reply.status_code in (400, 422), reply.text
    assert reply.json()["error"] in ("malformed_json", "invalid_request")


def test_two_idempotency_keys_in_one_request_are_422_and_charge_nothing(
    sqlite_lab: LabProcess,
) -> None:
    before = httpx.get(f"{sqlite_lab.base_url}/lab/audit", params={"scenario": "payment"}).json()
    reply = httpx.post(
        f"{sqlite_lab.base_url}/payment/key-row/charge",
        json={"account_id": 1, "amount_cents": 100},
        headers=[("Idempotency-Key", "a1"), ("Idempotency-Key", "a2")],
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"
    after = httpx.get(f"{sqlite_lab.base_url}/lab/audit", params={"scenario": "payment"}).json()
    assert after == before
