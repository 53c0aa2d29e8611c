"""The wallet scenario: withdrawals and transfers with every strategy, the double spend, opposite
transfers that must not deadlock, the audit's arithmetic, and bad input changing nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, start_lab, strategy_params
from tests.lab.helpers import Reply, audit_scenario, reset_scenario, send_together
from toctou.engine import RacePlan, RaceRequest, run_race
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.wallet.strategies import STRATEGIES

ALL = list(STRATEGIES)
EACH = strategy_params(STRATEGIES)  # those that need Redis are skipped without it
NO_RETRIES = ["atomic", "lock", "constraint"]  # never give up: every affordable transfer succeeds


def post(lab: LabProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{lab.base_url}{path}", timeout=30, **kwargs)


def reset(lab: LabProcess, **fields: int) -> dict[str, Any]:
    return reset_scenario(lab, "wallet", **fields)


def audit(lab: LabProcess, **params: int) -> dict[str, Any]:
    return audit_scenario(lab, "wallet", **params)


def balances(lab: LabProcess) -> list[int]:
    return [a["balance_cents"] for a in audit(lab)["accounts"]]


def account(lab: LabProcess, account_id: int) -> dict[str, Any]:
    reply = httpx.get(f"{lab.base_url}/wallet/accounts/{account_id}", timeout=30)
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def withdraw(lab: LabProcess, strategy: str, account_id: int, cents: int) -> httpx.Response:
    body = {"account_id": account_id, "amount_cents": cents}
    return post(lab, f"/wallet/{strategy}/withdraw", json=body)


def transfer_body(source: int, target: int, cents: int) -> dict[str, int]:
    return {"from_account": source, "to_account": target, "amount_cents": cents}


def transfer(
    lab: LabProcess, strategy: str, source: int, target: int, cents: int
) -> httpx.Response:
    return post(lab, f"/wallet/{strategy}/transfer", json=transfer_body(source, target, cents))


def send_mixed(
    lab: LabProcess, calls: list[tuple[str, dict[str, Any]]], window_ms: float = 50
) -> list[Reply]:
    """Different POSTs released together (last-byte sync), each with the race window."""
    headers = (("Content-Type", "application/json"), ("X-Race-Window-Ms", f"{window_ms:g}"))
    plan = RacePlan(
        requests=tuple(
            RaceRequest(f"{lab.base_url}{path}", "POST", headers, json.dumps(body).encode())
            for path, body in calls
        ),
        technique="last-byte",
        gate_wait_ms=20,
    )
    attempts = run_race(plan).rounds[0].attempts
    assert len(attempts) == len(calls)
    return [Reply(a.status, json.loads(a.body) if a.body else None) for a in attempts]


def broken(report: dict[str, Any]) -> set[str]:
    return {i["name"] for i in report["invariants"] if not i["holds"]}


@pytest.fixture
def lab(sqlite_lab: LabProcess) -> LabProcess:
    """The shared SQLite lab with the wallet at its seed: accounts 1 and 2, 1000 cents each."""
    state = reset(sqlite_lab)
    assert [(a["id"], a["balance_cents"]) for a in state["accounts"]] == [(1, 1000), (2, 1000)]
    return sqlite_lab


@pytest.fixture
def unchanged(lab: LabProcess) -> Iterator[LabProcess]:
    """The seeded lab; the wallet's audit must be exactly the same after the test."""
    before = audit(lab)
    yield lab
    assert audit(lab) == before


# --- the happy path and the business edges, for every strategy -----------------------------


@pytest.mark.parametrize("strategy", EACH)
def test_withdraw_then_transfer_moves_exactly_the_money(lab: LabProcess, strategy: str) -> None:
    taken = withdraw(lab, strategy, 1, 300)
    assert taken.status_code == 201, taken.text
    body = taken.json()
    assert body["status"] == "withdrawn"
    assert body["effect"] == f"withdrawal {body['withdrawal']['id']}"
    assert body["withdrawal"] | {"id": 0, "created_at": ""} == {
        "id": 0,
        "account_id": 1,
        "amount_cents": 300,
        "strategy": strategy,
        "created_at": "",
    }
    assert body["attempts"] == 1

    moved = transfer(lab, strategy, 1, 2, 200)
    assert moved.status_code == 201, moved.text
    sent = moved.json()
    assert sent["status"] == "transferred"
    assert sent["effect"] == f"transfer {sent['transfer']['id']}"
    assert (sent["transfer"]["from_account"], sent["transfer"]["to_account"]) == (1, 2)

    one, two = account(lab, 1), account(lab, 2)
    assert (one["balance_cents"], one["withdrawn_cents"], one["transferred_out_cents"]) == (
        500,
        300,
        200,
    )
    assert (two["balance_cents"], two["transferred_in_cents"], two["expected_cents"]) == (
        1200,
        200,
        1200,
    )
    assert one["damage"] == two["damage"] == 0
    report = audit(lab)
    assert report["holds"], report
    assert (report["damage"], report["effects"]) == (0, 2)
    assert (report["withdrawals_total"], report["transfers_total"]) == (1, 1)


@pytest.mark.parametrize("strategy", EACH)
def test_the_whole_balance_can_go_once_and_then_nothing_more(
    lab: LabProcess, strategy: str
) -> None:
    assert withdraw(lab, strategy, 1, 1000).status_code == 201
    for refused in (withdraw(lab, strategy, 1, 1), transfer(lab, strategy, 1, 2, 1)):
        assert refused.status_code == 409, refused.text
        assert refused.json()["status"] == "rejected"
        assert refused.json()["reason"] == "insufficient_funds"
        assert "effect" not in refused.json()
    assert balances(lab) == [0, 1000]
    report = audit(lab)
    assert report["holds"], report
    assert report["effects"] == 1


@pytest.mark.parametrize("strategy", EACH)
def test_a_refused_transfer_moves_nothing(unchanged: LabProcess, strategy: str) -> None:
    for source, target in ((1, 2), (2, 1)):  # the debit comes first in id order, then second
        refused = transfer(unchanged, strategy, source, target, 1001)
        assert refused.status_code == 409, refused.text
        assert refused.json()["reason"] == "insufficient_funds"


@pytest.mark.parametrize("strategy", EACH)
@pytest.mark.parametrize(
    ("action", "missing"),
    [
        pytest.param(("withdraw", 9), 9, id="withdraw-unknown"),
        pytest.param(("transfer", 9, 1), 9, id="transfer-from-unknown"),
        pytest.param(("transfer", 2, 9), 9, id="transfer-to-unknown"),
        pytest.param(("transfer", 9, 8), 9, id="transfer-both-unknown"),
        pytest.param(("transfer", 1, 9, 5000), 9, id="unknown-beats-insufficient"),
    ],
)
def test_unknown_account_is_404_and_nothing_moves(
    unchanged: LabProcess, strategy: str, action: tuple[Any, ...], missing: int
) -> None:
    """Also when the other account's write went first (atomic, constraint in id order)."""
    if action[0] == "withdraw":
        reply = withdraw(unchanged, strategy, action[1], 100)
    else:
        cents = action[3] if len(action) > 3 else 100
        reply = transfer(unchanged, strategy, action[1], action[2], cents)
    assert reply.status_code == 404, reply.text
    assert reply.json() == {
        "error": "account_not_found",
        "message": f"no account with id {missing}",
    }


def test_unknown_strategy_is_404_listing_the_valid_ones(unchanged: LabProcess) -> None:
    reply = withdraw(unchanged, "nope", 1, 100)
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_strategy"
    assert reply.json()["valid"] == ALL


def test_unknown_account_read_is_404(lab: LabProcess) -> None:
    reply = httpx.get(f"{lab.base_url}/wallet/accounts/3")
    assert reply.status_code == 404
    assert reply.json()["error"] == "account_not_found"
    for bad in ("0", "x", str(2**63)):
        assert httpx.get(f"{lab.base_url}/wallet/accounts/{bad}").status_code == 422


# --- reset and audit scopes -----------------------------------------------------------------


def test_reset_scope_sets_accounts_and_balance_then_defaults_restore_the_seed(
    lab: LabProcess,
) -> None:
    state = reset(lab, accounts=3, balance_cents=50)
    assert [(a["id"], a["balance_cents"], a["initial_cents"]) for a in state["accounts"]] == [
        (1, 50, 50),
        (2, 50, 50),
        (3, 50, 50),
    ]
    assert transfer(lab, "atomic", 3, 1, 50).status_code == 201
    assert withdraw(lab, "atomic", 1, 100).status_code == 201
    narrowed = audit(lab, account_id=3)
    assert [a["id"] for a in narrowed["accounts"]] == [3]
    assert (narrowed["effects"], narrowed["transfers_total"], narrowed["withdrawals_total"]) == (
        1,
        1,
        0,
    )
    assert audit(lab)["effects"] == 2

    state = reset(lab)
    assert [(a["id"], a["balance_cents"]) for a in state["accounts"]] == [(1, 1000), (2, 1000)]
    assert (state["withdrawals_total"], state["transfers_total"]) == (0, 0)
    assert audit(lab)["effects"] == 0
    reply = httpx.get(f"{lab.base_url}/lab/audit", params={"scenario": "wallet", "account_id": 3})
    assert reply.status_code == 404
    assert reply.json()["error"] == "account_not_found"


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"balance_cents": -1}, id="balance-negative"),
        pytest.param({"balance_cents": 10.5}, id="balance-float"),
        pytest.param({"balance_cents": "1000"}, id="balance-string"),
        pytest.param({"balance_cents": 10**10}, id="balance-too-big"),
        pytest.param({"accounts": 0}, id="no-accounts"),
        pytest.param({"accounts": 101}, id="too-many-accounts"),
        pytest.param({"stock": 1}, id="unknown-field"),
    ],
)
def test_bad_reset_is_422_and_changes_nothing(
    unchanged: LabProcess, fields: dict[str, Any]
) -> None:
    assert withdraw(unchanged, "atomic", 1, 1).status_code == 201  # a state to keep
    before = audit(unchanged)
    reply = post(unchanged, "/lab/reset", json={"scenario": "wallet", **fields})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"
    assert audit(unchanged) == before
    reset(unchanged)  # what `unchanged` compares against


def test_bad_audit_scope_is_422(lab: LabProcess) -> None:
    for params in ({"account_id": "x"}, {"account_id": 0}, {"item_id": 1}):
        reply = httpx.get(f"{lab.base_url}/lab/audit", params={"scenario": "wallet", **params})
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"] == "invalid_request"


# --- bad input ------------------------------------------------------------------------------

AMOUNTS = [
    pytest.param(0, id="zero"),
    pytest.param(-100, id="negative"),
    pytest.param(1.5, id="fractional"),
    pytest.param(100.0, id="float"),
    pytest.param("100", id="string"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param(100_000_001, id="over-limit"),
    pytest.param(2**63, id="2^63"),
]


@pytest.mark.parametrize("strategy", ["vulnerable", "atomic"])
@pytest.mark.parametrize("amount", AMOUNTS)
def test_bad_amount_is_422(unchanged: LabProcess, strategy: str, amount: Any) -> None:
    for path, body in (
        ("withdraw", {"account_id": 1, "amount_cents": amount}),
        ("transfer", {"from_account": 1, "to_account": 2, "amount_cents": amount}),
    ):
        reply = post(unchanged, f"/wallet/{strategy}/{path}", json=body)
        assert reply.status_code == 422, reply.text
        error = reply.json()
        assert error["error"] == "invalid_request"
        assert "amount_cents" in error["message"]
        assert any("amount_cents" in d["loc"] for d in error["details"])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param("withdraw", {"amount_cents": 1}, "account_id", id="withdraw-no-account"),
        pytest.param("withdraw", {"account_id": 1}, "amount_cents", id="withdraw-no-amount"),
        pytest.param(
            "withdraw", {"account_id": 0, "amount_cents": 1}, "account_id", id="account-zero"
        ),
        pytest.param(
            "withdraw", {"account_id": "1", "amount_cents": 1}, "account_id", id="account-string"
        ),
        pytest.param(
            "withdraw", {"account_id": 2**63, "amount_cents": 1}, "account_id", id="account-2^63"
        ),
        pytest.param(
            "withdraw",
            {"account_id": 1, "amount_cents": 1, "to_account": 2},
            "to_account",
            id="withdraw-unknown-field",
        ),
        pytest.param(
            "transfer",
            {"from_account": 1, "to_account": 1, "amount_cents": 1},
            "to_account",
            id="transfer-to-itself",
        ),
        pytest.param(
            "transfer", {"from_account": 1, "amount_cents": 1}, "to_account", id="transfer-no-to"
        ),
        pytest.param(
            "transfer",
            {"from_account": 1.0, "to_account": 2, "amount_cents": 1},
            "from_account",
            id="from-float",
        ),
        pytest.param(
            "transfer",
            {"from_account": 1, "to_account": 2, "amount_cents": 1, "fee_cents": 0},
            "fee_cents",
            id="transfer-unknown-field",
        ),
    ],
)
@pytest.mark.parametrize("strategy", ["vulnerable", "constraint"])
def test_bad_body_is_422(
    unchanged: LabProcess, strategy: str, path: str, body: dict[str, Any], field: str
) -> None:
    reply = post(unchanged, f"/wallet/{strategy}/{path}", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert field in error["message"]
    assert any(field in d["loc"] for d in error["details"])


@pytest.mark.parametrize("path", ["withdraw", "transfer"])
@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        pytest.param(b'{"account_id": 1,', 400, "malformed_json", id="truncated"),
        pytest.param(b"not json", 400, "malformed_json", id="not-json"),
        pytest.param(b"[]", 422, "invalid_request", id="array"),
        pytest.param(b"1000", 422, "invalid_request", id="number"),
        pytest.param(b"", 422, "invalid_request", id="empty"),
    ],
)
def test_malformed_body_changes_nothing(
    unchanged: LabProcess, path: str, raw: bytes, status: int, code: str
) -> None:
    reply = post(
        unchanged,
        f"/wallet/atomic/{path}",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == status, reply.text
    assert reply.json()["error"] == code


def test_bad_race_window_is_422(unchanged: LabProcess) -> None:
    for window in ("-1", "1001", "nan", "soon"):
        reply = post(
            unchanged,
            "/wallet/vulnerable/withdraw",
            json={"account_id": 1, "amount_cents": 1},
            headers={"X-Race-Window-Ms": window},
        )
        assert reply.status_code == 422, (window, reply.text)
        assert reply.json()["error"] == "invalid_request"


# --- races -----------------------------------------------------------------------------------


def race_withdrawals(lab: LabProcess, strategy: str, *, count: int = 10) -> list[Reply]:
    return send_together(
        f"{lab.base_url}/wallet/{strategy}/withdraw",
        count,
        body={"account_id": 1, "amount_cents": 1000},
        headers={"X-Race-Window-Ms": "50"},
    )


def test_double_spend_is_audited_to_the_cent(lab: LabProcess) -> None:
    """Every extra success of the vulnerable withdrawal is 1000 cents spent that were not there:
    the balance stays at 0 (CHECK never fires) while the ledger goes negative."""
    for _round in range(5):
        reset(lab)
        replies = race_withdrawals(lab, "vulnerable")
        assert [r.status for r in replies if r.status not in (201, 409)] == []
        won = sum(r.status == 201 for r in replies)
        if won > 1:
            break
    assert won > 1
    one = audit(lab)["accounts"][0]
    assert one["balance_cents"] == 0
    assert one["withdrawn_cents"] == 1000 * won
    assert one["overdrawn_cents"] == one["damage"] == 1000 * (won - 1)
    assert one["lost_update_cents"] == 1000 * (won - 1)  # created out of nothing
    report = audit(lab)
    assert report["damage"] == 1000 * (won - 1)
    assert broken(report) == {"conservation", "no_overdraft"}  # the balance never went below 0
    assert report["effects"] == won


@pytest.mark.parametrize("strategy", ["atomic", "constraint", "lock"])
def test_concurrent_withdrawals_spend_the_balance_once(lab: LabProcess, strategy: str) -> None:
    replies = race_withdrawals(lab, strategy)
    assert sorted(r.status or 0 for r in replies) == [201] + [409] * 9
    assert all(r.body["reason"] == "insufficient_funds" for r in replies if r.status == 409)
    report = audit(lab)
    assert report["holds"], report
    assert report["accounts"][0]["balance_cents"] == 0


@pytest.fixture(scope="module", params=BACKENDS)
def backend_lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    yield from start_lab(request.param, 1)


@pytest.mark.parametrize("strategy", NO_RETRIES)
def test_opposite_transfers_all_finish_and_conserve_money(
    backend_lab: LabProcess, strategy: str
) -> None:
    """Ten affordable transfers, five each way, released together, each holding its rows 50 ms:
    rows are taken in id order, so every one finishes (no deadlock, no 5xx), money adds up."""
    reset(backend_lab)
    replies = send_mixed(
        backend_lab,
        [
            (f"/wallet/{strategy}/transfer", transfer_body(source, target, 100))
            for source, target in [(1, 2), (2, 1)] * 5
        ],
    )
    assert [r.status for r in replies] == [201] * 10, replies
    report = audit(backend_lab)
    assert report["holds"], report
    assert balances(backend_lab) == [1000, 1000]
    assert report["transfers_total"] == 10
    assert len({r.body["effect"] for r in replies}) == report["effects"] == 10


def test_vulnerable_opposite_transfers_break_conservation(lab: LabProcess) -> None:
    """Lost updates on two rows: each account's balance disagrees with its own ledger, even
    where the total still adds up."""
    for _round in range(5):
        reset(lab)
        calls = [
            ("/wallet/vulnerable/transfer", transfer_body(source, target, 1000))
            for source, target in [(1, 2), (2, 1)] * 5
        ]
        replies = send_mixed(lab, calls)
        assert [r.status for r in replies if r.status not in (201, 409)] == []
        report = audit(lab)
        if report["damage"]:
            break
    assert "conservation" in broken(report), report
    drift = [a["lost_update_cents"] for a in report["accounts"]]
    # Balances never go below 0, so the damage is exactly the cents created plus those lost.
    assert report["damage"] == sum(abs(d) for d in drift) > 0, report
    assert report["effects"] == sum(r.status == 201 for r in replies)
