"""Small HTTP helpers for lab tests: reset an item, race it, read its audit and orders."""

from __future__ import annotations

from typing import Any

import httpx

from toctou.burst import Reply, Shot, fire
from toctou.lab.process import LabProcess


def reset(lab: LabProcess, item_id: int, stock: int) -> None:
    reply = httpx.post(f"{lab.base_url}/lab/reset", json={"item_id": item_id, "stock": stock})
    assert reply.status_code == 200, reply.text


def race(
    lab: LabProcess,
    strategy: str,
    *,
    item_id: int,
    quantity: int = 1,
    window_ms: float = 0,
    requests: int = 20,
) -> list[Reply]:
    shots = [
        Shot(
            "POST",
            f"/inventory/{strategy}/purchase",
            {"item_id": item_id, "quantity": quantity, "buyer": f"buyer-{i}"},
            {"X-Race-Window-Ms": str(window_ms)},
        )
        for i in range(requests)
    ]
    return fire(lab.base_url, shots)


def audit(lab: LabProcess, item_id: int | None = None) -> dict[str, Any]:
    params = {"item_id": item_id} if item_id is not None else {}
    reply = httpx.get(f"{lab.base_url}/lab/audit", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def order_ids(lab: LabProcess, item_id: int) -> list[int]:
    reply = httpx.get(f"{lab.base_url}/inventory/items/{item_id}/orders")
    assert reply.status_code == 200, reply.text
    return [o["id"] for o in reply.json()]


def assert_audit_matches_replies(lab: LabProcess, item_id: int, replies: list[Reply]) -> None:
    """Every 2xx carries exactly one order row of the item, and there are no other rows."""
    answered = sorted(r.body["order"]["id"] for r in replies if r.status == 201)
    assert sorted(order_ids(lab, item_id)) == answered
