"""The cart scenario: adding items and checking out with every strategy, items that land while
the payment is under way, double checkouts, bad input changing nothing, and the `version` and
`lock` strategies on each database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, start_lab
from tests.lab.helpers import Reply, audit_scenario, reset_scenario
from toctou.engine import RacePlan, RaceRequest, run_race
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.cart.ledger import SEED_ITEMS
from toctou.lab.scenarios.cart.strategies import STRATEGIES

ALL = list(STRATEGIES)
SEED_TOTAL = sum(cents for _sku, cents in SEED_ITEMS)
SOCK = {"cart_id": 1, "sku": "sock", "price_cents": 500}


def post(lab: LabProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{lab.base_url}{path}", timeout=30, **kwargs)


def reset(lab: LabProcess) -> None:
    reset_scenario(lab, "cart")


def audit(lab: LabProcess) -> dict[str, Any]:
    return audit_scenario(lab, "cart")


def cart(lab: LabProcess, cart_id: int = 1) -> dict[str, Any]:
    reply = httpx.get(f"{lab.base_url}/cart/carts/{cart_id}", timeout=30)
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def add(lab: LabProcess, strategy: str, **body: Any) -> httpx.Response:
    return post(lab, f"/cart/{strategy}/items", json={**SOCK, **body})


def checkout(lab: LabProcess, strategy: str, cart_id: int = 1) -> httpx.Response:
    return post(lab, f"/cart/{strategy}/checkout", json={"cart_id": cart_id})


def race(
    lab: LabProcess, strategy: str, *, checkouts: int = 1, adds: int = 0, window_ms: int = 50
) -> tuple[list[Reply], list[Reply]]:
    """``checkouts`` checkouts of cart 1 and ``adds`` socks added to it, released together;
    the checkouts' replies, then the adds'."""
    headers = (("Content-Type", "application/json"), ("X-Race-Window-Ms", str(window_ms)))

    def request(path: str, body: dict[str, Any]) -> RaceRequest:
        return RaceRequest(f"{lab.base_url}{path}", "POST", headers, json.dumps(body).encode())

    requests = [request(f"/cart/{strategy}/checkout", {"cart_id": 1})] * checkouts + [
        request(f"/cart/{strategy}/items", SOCK)
    ] * adds
    plan = RacePlan(requests=tuple(requests), technique="last-byte", gate_wait_ms=20)
    attempts = run_race(plan).rounds[0].attempts
    assert len(attempts) == checkouts + adds
    replies = [Reply(a.status, json.loads(a.body)) for a in attempts]
    return replies[:checkouts], replies[checkouts:]


def reasons(replies: list[Reply]) -> list[str]:
    """Each reply as "201" or its rejection's reason, sorted."""
    return sorted("201" if r.status == 201 else str(r.body.get("reason")) for r in replies)


@pytest.fixture
def lab(sqlite_lab: LabProcess) -> LabProcess:
    reset(sqlite_lab)
    return sqlite_lab


def test_the_seed_is_one_open_cart_with_two_items(lab: LabProcess) -> None:
    found = cart(lab)
    assert (found["status"], found["total_cents"], found["item_count"]) == ("open", SEED_TOTAL, 2)
    assert [(i["sku"], i["price_cents"], i["strategy"]) for i in found["items"]] == [
        (sku, cents, None) for sku, cents in SEED_ITEMS
    ]
    assert found["orders"] == []
    found_audit = audit(lab)
    assert (found_audit["holds"], found_audit["damage"], found_audit["effects"]) == (True, 0, 0)


@pytest.mark.parametrize("strategy", ALL)
def test_add_then_checkout_charges_everything(lab: LabProcess, strategy: str) -> None:
    added = add(lab, strategy)
    assert added.status_code == 201, added.text
    item = added.json()["item"]
    assert added.json()["effect"] == f"item {item['id']}"
    assert (item["sku"], item["price_cents"], item["strategy"]) == ("sock", 500, strategy)
    assert cart(lab)["total_cents"] == SEED_TOTAL + 500

    paid = checkout(lab, strategy)
    assert paid.status_code == 201, paid.text
    order = paid.json()["order"]
    assert paid.json()["effect"] == f"order {order['id']}"
    assert (order["amount_cents"], order["item_count"]) == (SEED_TOTAL + 500, 3)

    found = cart(lab)
    assert found["status"] == "paid"
    assert found["paid_cents"] == found["total_cents"] == SEED_TOTAL + 500
    assert (found["unpaid_cents"], found["overpaid_cents"]) == (0, 0)
    assert [o["id"] for o in found["orders"]] == [order["id"]]
    found_audit = audit(lab)
    assert (found_audit["holds"], found_audit["damage"], found_audit["effects"]) == (True, 0, 2)
    assert found_audit["state"]["items_added"] == 1


@pytest.mark.parametrize("strategy", ALL)
def test_a_paid_cart_takes_no_more_items_and_no_second_checkout(
    lab: LabProcess, strategy: str
) -> None:
    assert checkout(lab, strategy).status_code == 201
    before = (audit(lab), cart(lab))
    for reply in (add(lab, strategy), checkout(lab, strategy)):
        assert reply.status_code == 409, reply.text
        assert reply.json()["status"] == "rejected"
        assert reply.json()["reason"] == "checked_out"
    assert (audit(lab), cart(lab)) == before


def test_vulnerable_ships_items_added_during_the_payment(lab: LabProcess) -> None:
    [paid], adds = race(lab, "vulnerable", adds=3)
    assert paid.status == 201, paid.body
    assert paid.body["order"]["amount_cents"] == SEED_TOTAL  # summed before the socks landed
    assert [r.status for r in adds] == [201] * 3
    found = cart(lab)
    assert (found["status"], found["total_cents"]) == ("paid", SEED_TOTAL + 1500)
    assert found["unpaid_cents"] == 1500
    found_audit = audit(lab)
    assert found_audit["damage"] == 1500
    assert found_audit["effects"] == 4
    [check] = found_audit["invariants"]
    assert check["name"] == "paid_equals_shipped"
    assert not check["holds"]
    assert check["violations"][0].startswith("cart 1: 1 order(s) charged 2400 cents")


@pytest.mark.parametrize(
    ("strategy", "expected", "damage"),
    [
        ("vulnerable", ["201", "201"], SEED_TOTAL),  # charged twice, shipped once
        ("lock", ["201", "checked_out"], 0),
        ("version", ["201", "checked_out"], 0),
    ],
)
def test_two_checkouts_at_once(
    lab: LabProcess, strategy: str, expected: list[str], damage: int
) -> None:
    checkouts, _ = race(lab, strategy, checkouts=2)
    assert reasons(checkouts) == expected
    found = audit(lab)
    assert found["damage"] == damage
    assert len(cart(lab)["orders"]) == expected.count("201")
    if damage:
        assert cart(lab)["overpaid_cents"] == damage


# ---- bad input -------------------------------------------------------------------------------


@pytest.fixture
def unchanged(lab: LabProcess) -> Iterator[LabProcess]:
    """Cart 1 with a sock added; the test must leave the cart and its audit as they are."""
    assert add(lab, "lock").status_code == 201
    before = (audit(lab), cart(lab))
    yield lab
    assert (audit(lab), cart(lab)) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"price_cents": 0}, "price_cents", id="price-zero"),
        pytest.param({"price_cents": -500}, "price_cents", id="price-negative"),
        pytest.param({"price_cents": 4.99}, "price_cents", id="price-fraction"),
        pytest.param({"price_cents": 500.0}, "price_cents", id="price-float"),
        pytest.param({"price_cents": "500"}, "price_cents", id="price-string"),
        pytest.param({"price_cents": True}, "price_cents", id="price-bool"),
        pytest.param({"price_cents": 100_000_001}, "price_cents", id="price-too-big"),
        pytest.param({"price_cents": 2**64}, "price_cents", id="price-2^64"),
        pytest.param({"price_cents": None}, "price_cents", id="price-null"),
        pytest.param({"sku": ""}, "sku", id="sku-empty"),
        pytest.param({"sku": "s" * 65}, "sku", id="sku-65"),
        pytest.param({"sku": "red sock"}, "sku", id="sku-space"),
        pytest.param({"sku": 7}, "sku", id="sku-number"),
        pytest.param({"cart_id": 0}, "cart_id", id="cart-zero"),
        pytest.param({"cart_id": "1"}, "cart_id", id="cart-string"),
        pytest.param({"cart_id": 1.0}, "cart_id", id="cart-float"),
        pytest.param({"cart_id": 2**31}, "cart_id", id="cart-2^31"),
        pytest.param({"quantity": 3}, "quantity", id="unknown-field"),
    ],
)
def test_invalid_item_is_422(unchanged: LabProcess, body: dict[str, Any], field: str) -> None:
    reply = add(unchanged, "vulnerable", **body)
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert field in error["message"]
    assert any(field in d["loc"] for d in error["details"])


@pytest.mark.parametrize("field", ["cart_id", "sku", "price_cents"])
def test_a_missing_item_field_is_422(unchanged: LabProcess, field: str) -> None:
    body = {k: v for k, v in SOCK.items() if k != field}
    reply = post(unchanged, "/cart/vulnerable/items", json=body)
    assert reply.status_code == 422, reply.text
    assert field in reply.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "cart_id", id="missing"),
        pytest.param({"cart_id": 0}, "cart_id", id="zero"),
        pytest.param({"cart_id": "1"}, "cart_id", id="string"),
        pytest.param({"cart_id": 1, "amount_cents": 1}, "amount_cents", id="unknown-field"),
    ],
)
def test_invalid_checkout_is_422(unchanged: LabProcess, body: dict[str, Any], field: str) -> None:
    reply = post(unchanged, "/cart/vulnerable/checkout", json=body)
    assert reply.status_code == 422, reply.text
    assert field in reply.json()["message"]


@pytest.mark.parametrize("strategy", ALL)
def test_an_unknown_cart_is_404_on_every_route(unchanged: LabProcess, strategy: str) -> None:
    for reply in (
        add(unchanged, strategy, cart_id=999),
        checkout(unchanged, strategy, cart_id=999),
        httpx.get(f"{unchanged.base_url}/cart/carts/999"),
    ):
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"] == "cart_not_found"
        assert "999" in reply.json()["message"]


def test_unknown_strategy_is_404_naming_the_valid_ones(unchanged: LabProcess) -> None:
    for path, body in (("/cart/yolo/items", SOCK), ("/cart/yolo/checkout", {"cart_id": 1})):
        reply = post(unchanged, path, json=body)
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"] == "unknown_strategy"
        assert reply.json()["valid"] == ALL


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"cart_id": 1,}'])
@pytest.mark.parametrize("route", ["items", "checkout"])
def test_malformed_json_is_400(unchanged: LabProcess, route: str, body: bytes) -> None:
    reply = post(
        unchanged,
        f"/cart/lock/{route}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "malformed_json"


@pytest.mark.parametrize("path", ["/cart/carts/0", "/cart/carts/abc", "/cart/carts/2147483648"])
def test_a_bad_cart_id_in_the_path_is_422(unchanged: LabProcess, path: str) -> None:
    reply = httpx.get(f"{unchanged.base_url}{path}")
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"


def test_the_audit_takes_no_parameters(unchanged: LabProcess) -> None:
    reply = httpx.get(f"{unchanged.base_url}/lab/audit?scenario=cart&cart_id=1")
    assert reply.status_code == 422, reply.text


# ---- per database ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def backend_lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    yield from start_lab(request.param, 1)


def test_version_refuses_a_stale_sum_then_charges_the_new_total(
    backend_lab: LabProcess,
) -> None:
    """Adds during the payment bump the version: the checkout answers 409 cart_changed and the
    cart stays open; the next checkout charges every item."""
    reset(backend_lab)
    [stale], adds = race(backend_lab, "version", adds=4)
    assert stale.status == 409, stale.body
    assert stale.body["reason"] == "cart_changed"
    assert [r.status for r in adds] == [201] * 4
    assert cart(backend_lab)["status"] == "open"
    paid = checkout(backend_lab, "version")
    assert paid.status_code == 201, paid.text
    assert paid.json()["order"]["amount_cents"] == SEED_TOTAL + 4 * 500
    found = audit(backend_lab)
    assert (found["damage"], found["effects"]) == (0, 5)


@pytest.mark.parametrize("strategy", ["lock", "version"])
def test_a_losing_checkout_says_checked_out(backend_lab: LabProcess, strategy: str) -> None:
    """Of two checkouts at once one pays; the other learns the cart is paid (on MariaDB from a
    locking read: its snapshot would still show the cart open)."""
    reset(backend_lab)
    checkouts, _ = race(backend_lab, strategy, checkouts=2)
    assert reasons(checkouts) == ["201", "checked_out"]
    assert audit(backend_lab)["damage"] == 0


def test_lock_charges_what_ships(backend_lab: LabProcess) -> None:
    reset(backend_lab)
    [paid], adds = race(backend_lab, "lock", adds=4)
    assert paid.status == 201, paid.body
    assert {r.body.get("reason") for r in adds if r.status != 201} <= {"checked_out"}
    landed = sum(r.status == 201 for r in adds)
    assert paid.body["order"]["amount_cents"] == SEED_TOTAL + 500 * landed
    found = cart(backend_lab)
    assert found["paid_cents"] == found["total_cents"]
    assert audit(backend_lab)["effects"] == 1 + landed
