"""The lab's routes answer with the documented shapes."""

from __future__ import annotations

import re
import sqlite3

import httpx

from tests.conftest import new_item_id, runnable
from tests.lab.helpers import audit, order_ids, reset
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.inventory.strategies import STRATEGIES


def test_purchase_answers_201_with_the_order(sqlite_lab: LabProcess) -> None:
    item = new_item_id()
    reset(sqlite_lab, item, 5)
    reply = httpx.post(
        f"{sqlite_lab.base_url}/inventory/atomic/purchase",
        json={"item_id": item, "quantity": 2, "buyer": "ada"},
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["status"] == "purchased"
    assert body["attempts"] == 1
    assert body["worker"] in sqlite_lab.worker_pids
    order = body["order"]
    assert (order["item_id"], order["quantity"], order["buyer"], order["strategy"]) == (
        item,
        2,
        "ada",
        "atomic",
    )
    assert order_ids(sqlite_lab, item) == [order["id"]]
    view = httpx.get(f"{sqlite_lab.base_url}/inventory/items/{item}").json()
    assert view == {
        "id": item,
        "name": f"Item {item}",
        "stock": 3,
        "initial_stock": 5,
        "units_sold": 2,
        "order_count": 1,
        "oversold": 0,
    }


def test_every_strategy_sells_once_when_alone(sqlite_lab: LabProcess) -> None:
    for strategy in runnable(STRATEGIES):
        item = new_item_id()
        reset(sqlite_lab, item, 1)
        url = f"{sqlite_lab.base_url}/inventory/{strategy}/purchase"
        assert httpx.post(url, json={"item_id": item}).status_code == 201, strategy
        assert httpx.post(url, json={"item_id": item}).status_code == 409, strategy
        assert audit(sqlite_lab, item)["holds"], strategy


def test_reset_deletes_orders_and_sets_stock(sqlite_lab: LabProcess) -> None:
    item = new_item_id()
    reset(sqlite_lab, item, 2)
    httpx.post(f"{sqlite_lab.base_url}/inventory/lock/purchase", json={"item_id": item})
    reply = httpx.post(
        f"{sqlite_lab.base_url}/lab/reset", json={"item_id": item, "stock": 7, "name": "Widget"}
    )
    assert reply.json()["stock"] == reply.json()["initial_stock"] == 7
    assert reply.json()["name"] == "Widget"
    assert order_ids(sqlite_lab, item) == []


def test_audit_lists_every_invariant(sqlite_lab: LabProcess) -> None:
    report = audit(sqlite_lab)
    names = [i["name"] for i in report["invariants"]]
    assert names == ["conservation", "no_oversell", "non_negative_stock", "orders_counted_once"]
    assert report["orders_total"] == sum(i["order_count"] for i in report["items"])


def test_strategies_lists_each_with_an_explanation(sqlite_lab: LabProcess) -> None:
    listed = httpx.get(f"{sqlite_lab.base_url}/strategies").json()
    inventory = [s for s in listed if s["scenario"] == "inventory"]
    assert [s["name"] for s in inventory] == list(STRATEGIES)
    assert all(s["summary"] and s["safe"] and s["why"] for s in inventory)
    assert {s["holds"]["sqlite"] for s in inventory} == {"always", "never", "one-worker"}


def test_health_names_worker_backend_and_version(sqlite_lab: LabProcess) -> None:
    httpx.get(f"{sqlite_lab.base_url}/lab/audit").raise_for_status()  # it has connected
    body = httpx.get(f"{sqlite_lab.base_url}/health").json()
    assert body == {
        "status": "ok",
        "worker": body["worker"],
        "backend": "sqlite",
        "database_version": sqlite3.sqlite_version,
        "admission_limit": 10,
    }


def test_openapi_describes_every_route_and_error(sqlite_lab: LabProcess) -> None:
    spec = httpx.get(f"{sqlite_lab.base_url}/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/inventory/{strategy}/purchase",
        "/inventory/items/{item_id}",
        "/lab/reset",
        "/lab/audit",
        "/health",
        "/strategies",
        "/status",
        "/reset",
        "/buy-vulnerable",
        "/buy-secure",
        "/buy-secure-lock",
    ):
        assert path in paths
        for operation in paths[path].values():
            assert operation.get("description") or operation.get("summary"), path
    purchase = paths["/inventory/{strategy}/purchase"]["post"]
    assert {"201", "404", "409", "422", "503"} <= set(purchase["responses"])
    # 503 (queued too long, or the database stayed locked) on every route that queues for it
    for path in ("/inventory/items/{item_id}", "/lab/reset", "/lab/audit", "/buy-vulnerable"):
        for operation in paths[path].values():
            assert {"413", "503"} <= set(operation["responses"]), path
    assert "503" not in paths["/health"]["get"]["responses"]
    assert httpx.get(f"{sqlite_lab.base_url}/docs").status_code == 200


def test_the_index_says_where_to_go(sqlite_lab: LabProcess) -> None:
    body = httpx.get(f"{sqlite_lab.base_url}/").json()
    assert body["docs"] == "/docs"
    assert body["scenarios"] == "/scenarios"


def test_docs_load_nothing_from_the_network(sqlite_lab: LabProcess) -> None:
    page = httpx.get(f"{sqlite_lab.base_url}/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert assets, page.text
    assert [a for a in assets if not a.startswith("/docs/assets/")] == []
    assert "https://" not in page.text
    for asset in assets:
        reply = httpx.get(f"{sqlite_lab.base_url}{asset}")
        assert reply.status_code == 200, asset
        assert len(reply.content) > 500, asset
