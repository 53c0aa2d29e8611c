"""The seed demo's own API, so its original ``attack.py`` runs against the lab unchanged.

Same routes, JSON and status codes as the seed; the flaws that were accidents are gone: every route
is async end to end, and ``/buy-secure-lock`` really locks.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from toctou.lab.deps import AdminDep, LabDep, RaceWindowDep, RaceWindowHeaderDep
from toctou.lab.errors import Rejected
from toctou.lab.scenarios.inventory.ledger import SEED_ITEM, read_item, reset_item
from toctou.lab.scenarios.inventory.strategies import STRATEGIES, Purchase
from toctou.lab.schemas import ADMISSION_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["seed demo"], responses=ADMISSION_RESPONSES)  # every route uses the db

SEED_WINDOW_MS = 100.0  # the seed's time.sleep(0.1) between check and write


class SeedBuyOut(BaseModel):
    status: Literal["success", "fail"]
    message: str


class SeedStatusOut(BaseModel):
    item: str
    stock: int


class SeedResetOut(BaseModel):
    message: str


async def _buy(lab: LabDep, strategy: str, window_ms: float) -> SeedBuyOut:
    purchase = Purchase(
        item_id=SEED_ITEM, quantity=1, buyer=None, strategy=strategy, window_ms=window_ms
    )
    try:
        await STRATEGIES[strategy].run(lab, purchase)
    except Rejected:
        return SeedBuyOut(status="fail", message="Out of stock")
    return SeedBuyOut(status="success", message="Item purchased!")


@router.get("/status")
async def seed_status(lab: LabDep) -> SeedStatusOut:
    """The seed's stock read-out for item 1."""
    async with lab.db.sessions() as session:
        item = await read_item(session, SEED_ITEM)
    return SeedStatusOut(item=item.name, stock=item.stock)


@router.get("/reset")
async def seed_reset(lab: LabDep, _admin: AdminDep) -> SeedResetOut:
    """Put item 1 back to stock 1 (and delete its orders, so the audit starts clean)."""
    async with lab.db.sessions() as session, session.begin():
        await reset_item(session, item_id=SEED_ITEM, stock=1)
    return SeedResetOut(message="Stock reset to 1")


@router.post("/buy-vulnerable")
async def seed_buy_vulnerable(lab: LabDep, header: RaceWindowHeaderDep) -> SeedBuyOut:
    """The seed's check-then-act purchase, with its 100 ms window between check and write."""
    return await _buy(lab, "vulnerable", SEED_WINDOW_MS if header is None else header)


@router.post("/buy-secure")
async def seed_buy_secure(lab: LabDep, window_ms: RaceWindowDep) -> SeedBuyOut:
    """The seed's fix: one conditional UPDATE."""
    return await _buy(lab, "atomic", window_ms)


@router.post("/buy-secure-lock")
async def seed_buy_secure_lock(lab: LabDep, window_ms: RaceWindowDep) -> SeedBuyOut:
    """What the seed's stub promised: a real pessimistic lock on every backend."""
    return await _buy(lab, "lock", window_ms)
