"""The inventory's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from toctou.lab.schemas import Printable, ServedOut, StrictIn

__all__ = [
    "MAX_ITEM_ID",
    "AuditScope",
    "InventoryState",
    "ItemAudit",
    "ItemOut",
    "OrderOut",
    "PurchaseIn",
    "PurchaseOut",
    "ResetScope",
]

MAX_ITEM_ID = 2**31 - 1
MAX_STOCK = 1_000_000_000

# strict=True: "2", 1.0 and true are not quantities; a client that sends them has a bug.
ItemId = Annotated[int, Field(strict=True, ge=1, le=MAX_ITEM_ID)]
Quantity = Annotated[int, Field(strict=True, ge=1, le=1000)]


class PurchaseIn(StrictIn):
    """A purchase: which item, how many units, and who buys."""

    item_id: ItemId = 1
    quantity: Quantity = 1
    buyer: Annotated[str | None, Field(strict=True, min_length=1, max_length=64), Printable] = None


class ResetScope(StrictIn):
    """Put an item back to a known stock and delete its orders (the item is created if missing).

    Without ``item_id`` the whole scenario goes back to its seed: item 1, stock 1, no orders.
    """

    item_id: ItemId | None = None
    stock: Annotated[int, Field(strict=True, ge=0, le=MAX_STOCK)] = 1
    name: Annotated[str | None, Field(strict=True, min_length=1, max_length=120), Printable] = None


class AuditScope(StrictIn):
    """Narrow the audit to one item (``?scenario=inventory&item_id=5``)."""

    item_id: Annotated[int | None, Field(ge=1, le=MAX_ITEM_ID)] = None


class OrderOut(BaseModel):
    id: int
    item_id: int
    quantity: int
    buyer: str | None
    strategy: str
    created_at: datetime


class PurchaseOut(ServedOut):
    status: Literal["purchased"] = "purchased"
    effect: str = Field(description="the order this purchase wrote, e.g. 'order 17'")
    order: OrderOut


class ItemOut(BaseModel):
    id: int
    name: str
    stock: int
    initial_stock: int
    units_sold: int
    order_count: int
    oversold: int = Field(description="units sold beyond the initial stock")


class ItemAudit(ItemOut):
    lost_updates: int = Field(description="units sold that the stock never lost (overwritten)")


class InventoryState(BaseModel):
    items: list[ItemAudit]
    orders_total: int
