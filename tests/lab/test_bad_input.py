"""Bad input gets a clear 4xx JSON error and leaves the data exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import runnable, strategy_params
from tests.lab.helpers import audit, reset
from toctou.lab.admission import MAX_BODY_BYTES
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.inventory.strategies import STRATEGIES

ITEM = 42


@pytest.fixture
def lab(sqlite_lab: LabProcess) -> Iterator[LabProcess]:
    """The shared lab with item 42 at stock 3; the audit must be the same after the test."""
    reset(sqlite_lab, ITEM, 3)
    before = audit(sqlite_lab)
    yield sqlite_lab
    assert audit(sqlite_lab) == before


def post(lab: LabProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{lab.base_url}{path}", **kwargs)


def post_raw_purchase(lab: LabProcess, content: bytes | Iterator[bytes]) -> httpx.Response:
    """An atomic purchase whose JSON body is given as raw bytes (or streamed chunks)."""
    return post(
        lab,
        "/inventory/atomic/purchase",
        content=content,
        headers={"Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"item_id": ITEM, "quantity": 0}, "quantity", id="quantity-zero"),
        pytest.param({"item_id": ITEM, "quantity": -1}, "quantity", id="quantity-negative"),
        pytest.param({"item_id": ITEM, "quantity": 1.5}, "quantity", id="quantity-fractional"),
        pytest.param({"item_id": ITEM, "quantity": 1.0}, "quantity", id="quantity-float"),
        pytest.param({"item_id": ITEM, "quantity": "1"}, "quantity", id="quantity-string"),
        pytest.param({"item_id": ITEM, "quantity": True}, "quantity", id="quantity-bool"),
        pytest.param({"item_id": ITEM, "quantity": None}, "quantity", id="quantity-null"),
        pytest.param({"item_id": ITEM, "quantity": 1001}, "quantity", id="quantity-over-1000"),
        pytest.param({"item_id": ITEM, "quantity": 2**63}, "quantity", id="quantity-2^63"),
        pytest.param({"item_id": ITEM, "quantity": 2**64 + 1}, "quantity", id="quantity-2^64"),
        pytest.param({"item_id": ITEM, "buyer": "x" * 65}, "buyer", id="buyer-too-long"),
        pytest.param({"item_id": ITEM, "buyer": 7}, "buyer", id="buyer-not-string"),
        pytest.param({"item_id": 0}, "item_id", id="item-zero"),
        pytest.param({"item_id": "42"}, "item_id", id="item-string"),
        pytest.param({"item_id": 2**63}, "item_id", id="item-2^63"),
        pytest.param({"item_id": ITEM, "price": 0}, "price", id="unknown-field"),
    ],
)
@pytest.mark.parametrize("strategy", ["vulnerable", "atomic"])
def test_invalid_purchase_is_422(lab: LabProcess, strategy: str, body: Any, field: str) -> None:
    reply = post(lab, f"/inventory/{strategy}/purchase", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert field in error["message"]
    assert any(field in d["loc"] for d in error["details"])


@pytest.mark.parametrize("body", [b"{", b'{"item_id": 1,}', b"not json", b'{"item_id": 1'])
def test_malformed_json_is_400(lab: LabProcess, body: bytes) -> None:
    reply = post_raw_purchase(lab, body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "malformed_json"


@pytest.mark.parametrize("body", [b"", b"[]", b"1", b'"text"'])
def test_body_that_is_not_an_object_is_422(lab: LabProcess, body: bytes) -> None:
    reply = post_raw_purchase(lab, body)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"


@pytest.mark.parametrize("strategy", strategy_params(STRATEGIES))
def test_unknown_item_is_404_for_every_strategy(lab: LabProcess, strategy: str) -> None:
    reply = post(lab, f"/inventory/{strategy}/purchase", json={"item_id": 999_999})
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == "item_not_found"


def test_unknown_strategy_is_404_naming_the_valid_ones(lab: LabProcess) -> None:
    reply = post(lab, "/inventory/yolo/purchase", json={"item_id": ITEM})
    assert reply.status_code == 404
    error = reply.json()
    assert error["error"] == "unknown_strategy"
    assert error["valid"] == list(STRATEGIES)
    assert "yolo" in error["message"]
    assert "atomic" in error["message"]


@pytest.mark.parametrize("window", ["-1", "1000.5", "1e9", "abc", "nan", "inf", ""])
def test_race_window_out_of_range_is_422(lab: LabProcess, window: str) -> None:
    reply = post(
        lab,
        "/inventory/atomic/purchase",
        json={"item_id": ITEM},
        headers={"X-Race-Window-Ms": window},
    )
    assert reply.status_code == 422, reply.text
    assert "x-race-window-ms" in reply.json()["message"]


def test_race_window_on_seed_route_is_validated_too(lab: LabProcess) -> None:
    reply = post(lab, "/buy-vulnerable", headers={"X-Race-Window-Ms": "5000"})
    assert reply.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"item_id": ITEM, "stock": -1},
        {"item_id": ITEM, "stock": "3"},
        {"item_id": ITEM, "stock": 10**10},
        {"item_id": 0, "stock": 1},
        {"item_id": ITEM, "name": ""},
        {"item_id": ITEM, "colour": "red"},
    ],
)
def test_invalid_reset_is_422(lab: LabProcess, body: Any) -> None:
    reply = post(lab, "/lab/reset", json=body)
    assert reply.status_code == 422, reply.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/inventory/items/abc", 422),
        ("/inventory/items/0", 422),
        ("/inventory/items/999999", 404),
        ("/inventory/items/999999/orders", 404),
        ("/lab/audit?item_id=-4", 422),
        ("/lab/audit?item_id=999999", 404),
        ("/no/such/route", 404),
    ],
)
def test_bad_reads_are_4xx(lab: LabProcess, path: str, status: int) -> None:
    reply = httpx.get(f"{lab.base_url}{path}")
    assert reply.status_code == status, reply.text
    assert "error" in reply.json()


def test_wrong_method_is_405(lab: LabProcess) -> None:
    reply = httpx.get(f"{lab.base_url}/inventory/atomic/purchase")
    assert reply.status_code == 405
    assert reply.json()["error"] == "method_not_allowed"


def test_sold_out_is_409_and_changes_nothing(lab: LabProcess) -> None:
    for strategy in runnable(STRATEGIES):
        reply = post(lab, f"/inventory/{strategy}/purchase", json={"item_id": ITEM, "quantity": 4})
        assert reply.status_code == 409, (strategy, reply.text)
        assert reply.json()["status"] == "rejected"
        assert reply.json()["reason"] == "out_of_stock"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_is_413(lab: LabProcess, framing: str) -> None:
    """The gate holds bodies in memory before they queue, so it refuses oversized ones."""
    body = b'{"item_id": %d, "buyer": "%s"}' % (ITEM, b"x" * MAX_BODY_BYTES)
    content: bytes | Iterator[bytes] = body
    if framing == "chunked":  # no Content-Length: refused once the streamed bytes pass it
        content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
    reply = post_raw_purchase(lab, content)
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"] == "body_too_large"
