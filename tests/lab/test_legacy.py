"""The seed's own API: its client sees 10 sold versus 1 sold (responsiveness: test_responsive)."""

from __future__ import annotations

import asyncio

import httpx

from tests.lab.helpers import audit
from toctou.lab.process import LabProcess


async def seed_attack(base_url: str, endpoint: str) -> tuple[int, int, int]:
    """What the seed's attack.py does: reset, status, 10 x POST over one client, status."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        assert (await client.get("/reset")).json() == {"message": "Stock reset to 1"}
        start = (await client.get("/status")).json()
        replies = await asyncio.gather(*(client.post(f"/{endpoint}") for _ in range(10)))
        assert {r.status_code for r in replies} == {200}
        successes = sum(r.json()["status"] == "success" for r in replies)
        final = (await client.get("/status")).json()
    assert start == {"item": "Limited Edition GPU", "stock": 1}
    return start["stock"], successes, final["stock"]


def test_seed_client_sees_ten_sold_on_the_vulnerable_route(sqlite_lab: LabProcess) -> None:
    assert asyncio.run(seed_attack(sqlite_lab.base_url, "buy-vulnerable")) == (1, 10, 0)
    report = audit(sqlite_lab, 1)
    assert report["items"][0]["units_sold"] == 10
    assert not report["holds"]


def test_seed_client_sees_one_sold_on_the_secure_routes(sqlite_lab: LabProcess) -> None:
    for endpoint in ("buy-secure", "buy-secure-lock"):
        assert asyncio.run(seed_attack(sqlite_lab.base_url, endpoint)) == (1, 1, 0)
        assert audit(sqlite_lab, 1)["holds"]


def test_seed_fail_answer_has_the_seed_shape(sqlite_lab: LabProcess) -> None:
    httpx.get(f"{sqlite_lab.base_url}/reset")
    first = httpx.post(f"{sqlite_lab.base_url}/buy-secure")
    second = httpx.post(f"{sqlite_lab.base_url}/buy-secure")
    assert first.json() == {"status": "success", "message": "Item purchased!"}
    assert (second.status_code, second.json()) == (
        200,
        {"status": "fail", "message": "Out of stock"},
    )
