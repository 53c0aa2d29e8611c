"""Reading, auditing and resetting the inventory: what a race did to the data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import NotFound
from toctou.lab.scenario import Audit, Check
from toctou.lab.scenarios.inventory.models import Item, Order
from toctou.lab.scenarios.inventory.schemas import (
    AuditScope,
    InventoryState,
    ItemAudit,
    ItemOut,
    ResetScope,
)

__all__ = [
    "INVARIANTS",
    "SEED_ITEM",
    "SEED_ITEM_NAME",
    "ItemNotFound",
    "ItemView",
    "audit",
    "read_item",
    "reset",
    "reset_item",
    "seed",
]

SEED_ITEM = 1
SEED_ITEM_NAME = "Limited Edition GPU"

INVARIANTS = {
    "conservation": "stock + units sold == initial stock (a difference is a lost update)",
    "no_oversell": "units sold <= initial stock",
    "non_negative_stock": "stock >= 0",
    "orders_counted_once": "every order row belongs to exactly one existing item",
}


class ItemNotFound(NotFound):
    def __init__(self, item_id: int) -> None:
        super().__init__("item_not_found", f"no item with id {item_id}")
        self.item_id = item_id


@dataclass(frozen=True, slots=True)
class ItemView:
    id: int
    name: str
    stock: int
    initial_stock: int
    units_sold: int
    order_count: int

    @property
    def oversold(self) -> int:
        return max(0, self.units_sold - self.initial_stock)

    @property
    def lost_updates(self) -> int:
        return max(0, self.units_sold - (self.initial_stock - self.stock))

    @property
    def damage(self) -> int:
        """Units that left without the stock knowing: oversold, or sold over a lost update."""
        return max(self.oversold, self.lost_updates)

    def out(self) -> ItemOut:
        return ItemOut(
            id=self.id,
            name=self.name,
            stock=self.stock,
            initial_stock=self.initial_stock,
            units_sold=self.units_sold,
            order_count=self.order_count,
            oversold=self.oversold,
        )


async def read_items(session: AsyncSession, item_id: int | None = None) -> list[ItemView]:
    sold = (
        select(
            Order.item_id,
            func.coalesce(func.sum(Order.quantity), 0).label("units"),
            func.count(Order.id).label("orders"),
        )
        .group_by(Order.item_id)
        .subquery()
    )
    query = (
        select(
            Item.id,
            Item.name,
            Item.stock,
            Item.initial_stock,
            func.coalesce(sold.c.units, 0),
            func.coalesce(sold.c.orders, 0),
        )
        .outerjoin(sold, sold.c.item_id == Item.id)
        .order_by(Item.id)
    )
    if item_id is not None:
        query = query.where(Item.id == item_id)
    rows = await session.execute(query)
    # SUM() comes back as Decimal on PostgreSQL and MariaDB, hence int().
    return [
        ItemView(int(id_), name, int(stock), int(initial), int(units), int(orders))
        for id_, name, stock, initial, units, orders in rows
    ]


async def read_item(session: AsyncSession, item_id: int) -> ItemView:
    views = await read_items(session, item_id)
    if not views:
        raise ItemNotFound(item_id)
    return views[0]


async def audit(session: AsyncSession, scope: AuditScope) -> Audit:
    """Check every invariant of the inventory and say which rows break it."""
    item_id = scope.item_id
    if item_id is not None:
        items = [await read_item(session, item_id)]
        orders_total = await session.scalar(
            select(func.count(Order.id)).where(Order.item_id == item_id)
        )
    else:
        items = await read_items(session)
        orders_total = await session.scalar(select(func.count(Order.id)))
    orders_total = orders_total or 0
    counted = sum(v.order_count for v in items)
    checks = [
        Check(
            "conservation",
            [
                f"item {v.id}: {v.stock} + {v.units_sold} != {v.initial_stock}"
                for v in items
                if v.stock + v.units_sold != v.initial_stock
            ],
        ),
        Check(
            "no_oversell",
            [
                f"item {v.id}: sold {v.units_sold} of {v.initial_stock} ({v.oversold} oversold)"
                for v in items
                if v.oversold
            ],
        ),
        Check(
            "non_negative_stock", [f"item {v.id}: stock {v.stock}" for v in items if v.stock < 0]
        ),
        Check(
            "orders_counted_once",
            []
            if counted == orders_total
            else [f"{orders_total} order rows, {counted} counted against items"],
        ),
    ]
    state = InventoryState(
        items=[ItemAudit(**v.out().model_dump(), lost_updates=v.lost_updates) for v in items],
        orders_total=orders_total,
    )
    return Audit(
        checks=checks, damage=sum(v.damage for v in items), effects=orders_total, state=state
    )


async def reset_item(
    session: AsyncSession, *, item_id: int, stock: int, name: str | None = None
) -> None:
    """Delete the item's orders and set its stock and initial stock; create it if missing."""
    await session.execute(delete(Order).where(Order.item_id == item_id))
    item = await session.get(Item, item_id)
    if item is None:
        session.add(
            Item(
                id=item_id,
                name=name or (SEED_ITEM_NAME if item_id == SEED_ITEM else f"Item {item_id}"),
                stock=stock,
                initial_stock=stock,
                version=0,
            )
        )
    else:
        item.stock = item.initial_stock = stock
        item.version = 0
        if name is not None:
            item.name = name
    await session.flush()


async def reset(session: AsyncSession, scope: ResetScope) -> ItemOut:
    """One item to a stock (``item_id`` given), or the whole scenario back to its seed."""
    if scope.item_id is None:
        await session.execute(delete(Order))
        await session.execute(delete(Item).where(Item.id != SEED_ITEM))
    item_id = SEED_ITEM if scope.item_id is None else scope.item_id
    await reset_item(session, item_id=item_id, stock=scope.stock, name=scope.name)
    return (await read_item(session, item_id)).out()


async def seed(session: AsyncSession) -> None:
    """Item 1, the seed's GPU, with stock 1, unless it is there already."""
    if await session.get(Item, SEED_ITEM) is None:
        session.add(Item(id=SEED_ITEM, name=SEED_ITEM_NAME, stock=1, initial_stock=1, version=0))
        await session.flush()
