"""HTTP routes of the inventory scenario."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlalchemy import select

from toctou.lab.deps import LabDep, RaceWindowDep
from toctou.lab.scenario import pick
from toctou.lab.scenarios.inventory.ledger import read_item
from toctou.lab.scenarios.inventory.models import Order
from toctou.lab.scenarios.inventory.schemas import (
    MAX_ITEM_ID,
    ItemOut,
    OrderOut,
    PurchaseIn,
    PurchaseOut,
)
from toctou.lab.scenarios.inventory.strategies import STRATEGIES, Purchase
from toctou.lab.schemas import ADMISSION_RESPONSES, ErrorOut, RejectedOut

__all__ = ["router"]

router = APIRouter(tags=["inventory"])

ItemIdPath = Annotated[int, Path(ge=1, le=MAX_ITEM_ID)]


@router.post(
    "/inventory/{strategy}/purchase",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"model": ErrorOut, "description": "unknown strategy or item"},
        409: {"model": RejectedOut, "description": "out of stock, or contention"},
        422: {"model": ErrorOut, "description": "invalid body or race window"},
        **ADMISSION_RESPONSES,
    },
)
async def purchase(
    lab: LabDep, strategy: str, body: PurchaseIn, window_ms: RaceWindowDep
) -> PurchaseOut:
    """Buy `quantity` units of an item with the chosen strategy."""
    chosen = pick(STRATEGIES, strategy)
    sale = await chosen.run(
        lab,
        Purchase(
            item_id=body.item_id,
            quantity=body.quantity,
            buyer=body.buyer,
            strategy=chosen.name,
            window_ms=window_ms,
        ),
    )
    return PurchaseOut(
        effect=f"order {sale.value.id}",
        order=OrderOut.model_validate(sale.value, from_attributes=True),
        worker=lab.worker,
        attempts=sale.attempts,
    )


@router.get(
    "/inventory/items/{item_id}", responses={404: {"model": ErrorOut}, **ADMISSION_RESPONSES}
)
async def get_item(lab: LabDep, item_id: ItemIdPath) -> ItemOut:
    """Stock, initial stock, units sold, order count and units oversold."""
    async with lab.db.sessions() as session:
        return (await read_item(session, item_id)).out()


@router.get(
    "/inventory/items/{item_id}/orders", responses={404: {"model": ErrorOut}, **ADMISSION_RESPONSES}
)
async def list_orders(
    lab: LabDep,
    item_id: ItemIdPath,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[OrderOut]:
    """The item's orders, oldest first."""
    async with lab.db.sessions() as session:
        await read_item(session, item_id)
        rows = await session.scalars(
            select(Order).where(Order.item_id == item_id).order_by(Order.id).limit(limit)
        )
        return [OrderOut.model_validate(o, from_attributes=True) for o in rows]
