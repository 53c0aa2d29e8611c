"""Small HTTP helpers for lab tests: reset an item, race it with the engine, read the audit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from toctou.engine import RacePlan, RaceRequest, Technique, run_race
from toctou.lab.process import LabProcess


@dataclass(frozen=True)
class Reply:
    status: int | None
    body: Any


def reset(lab: LabProcess, item_id: int, stock: int) -> None:
    reply = httpx.post(f"{lab.base_url}/lab/reset", json={"item_id": item_id, "stock": stock})
    assert reply.status_code == 200, reply.text


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def send_together(
    url: str,
    count: int,
    *,
    method: str = "POST",
    body: Any = None,
    headers: dict[str, str] | None = None,
    technique: Technique = "last-byte",
) -> list[Reply]:
    """``count`` copies of one request, released together (by default last-byte sync)."""
    pairs = dict(headers or {})
    raw = b""
    if body is not None:
        raw = json.dumps(body).encode()
        pairs.setdefault("Content-Type", "application/json")
    plan = RacePlan.repeat(
        RaceRequest(url, method, tuple(pairs.items()), raw),
        count,
        technique=technique,
        gate_wait_ms=20,
    )
    attempts = run_race(plan).rounds[0].attempts
    assert len(attempts) == count
    return [Reply(a.status, _decode(a.body)) for a in attempts]


def race(
    lab: LabProcess,
    strategy: str,
    *,
    item_id: int,
    quantity: int = 1,
    window_ms: float = 0,
    requests: int = 20,
) -> list[Reply]:
    return send_together(
        f"{lab.base_url}/inventory/{strategy}/purchase",
        requests,
        body={"item_id": item_id, "quantity": quantity},
        headers={"X-Race-Window-Ms": str(window_ms)},
    )


def reset_scenario(lab: LabProcess, scenario: str, **fields: Any) -> dict[str, Any]:
    """``POST /lab/reset {"scenario": scenario, ...fields}``; the scenario's state after it."""
    reply = httpx.post(
        f"{lab.base_url}/lab/reset", json={"scenario": scenario, **fields}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    state: dict[str, Any] = reply.json()["scenarios"][scenario]
    return state


def audit_scenario(lab: LabProcess, scenario: str, **params: Any) -> dict[str, Any]:
    """One scenario's audit (narrowed by its own ``params``), with its state's fields at the top:
    ``holds``, ``damage``, ``effects``, ``invariants`` and, e.g., ``items``, ``orders_total``."""
    reply = httpx.get(
        f"{lab.base_url}/lab/audit", params={"scenario": scenario, **params}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()["scenarios"][scenario]
    return {**found, **found["state"]}


def audit(lab: LabProcess, item_id: int | None = None) -> dict[str, Any]:
    """The inventory's audit, narrowed to one item when given."""
    return audit_scenario(lab, "inventory", **({} if item_id is None else {"item_id": item_id}))


def order_ids(lab: LabProcess, item_id: int) -> list[int]:
    reply = httpx.get(f"{lab.base_url}/inventory/items/{item_id}/orders")
    assert reply.status_code == 200, reply.text
    return [o["id"] for o in reply.json()]


def assert_audit_matches_replies(lab: LabProcess, item_id: int, replies: list[Reply]) -> None:
    """Every 2xx carries exactly one order row of the item, and there are no other rows."""
    answered = sorted(r.body["order"]["id"] for r in replies if r.status == 201)
    assert sorted(order_ids(lab, item_id)) == answered
