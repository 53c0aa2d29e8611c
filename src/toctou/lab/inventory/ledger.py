"""Reading, auditing and resetting the inventory: what a race did to the data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import ItemNotFound
from toctou.lab.models import Item, Order
from toctou.lab.schemas import AuditOut, InvariantOut, ItemAudit

__all__ = ["ItemView", "audit", "read_item", "reset_item"]

SEED_ITEM_NAME = "Limited Edition GPU"


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


async def audit(session: AsyncSession, item_id: int | None = None) -> AuditOut:
    """Check every invariant of the inventory and say which rows break it."""
    if item_id is not None:
        items = [await read_item(session, item_id)]
        orders_total = await session.scalar(
            select(func.count(Order.id)).where(Order.item_id == item_id)
        )
    else:
        items = await read_items(session)
        orders_total = await session.scalar(select(func.count(Order.id)))
    counted = sum(v.order_count for v in items)
    invariants = [
        _invariant(
            "conservation",
            "stock + units sold == initial stock (a difference is a lost update)",
            [
                f"item {v.id}: {v.stock} + {v.units_sold} != {v.initial_stock}"
                for v in items
                if v.stock + v.units_sold != v.initial_stock
            ],
        ),
        _invariant(
            "no_oversell",
            "units sold <= initial stock",
            [
                f"item {v.id}: sold {v.units_sold} of {v.initial_stock} ({v.oversold} oversold)"
                for v in items
                if v.oversold
            ],
        ),
        _invariant(
            "non_negative_stock",
            "stock >= 0",
            [f"item {v.id}: stock {v.stock}" for v in items if v.stock < 0],
        ),
        _invariant(
            "orders_counted_once",
            "every order row belongs to exactly one existing item",
            []
            if counted == orders_total
            else [f"{orders_total} order rows, {counted} counted against items"],
        ),
    ]
    return AuditOut(
        holds=all(i.holds for i in invariants),
        invariants=invariants,
        items=[
            ItemAudit(
                id=v.id,
                name=v.name,
                stock=v.stock,
                initial_stock=v.initial_stock,
                units_sold=v.units_sold,
                order_count=v.order_count,
                oversold=v.oversold,
                lost_updates=v.lost_updates,
            )
            for v in items
        ],
        orders_total=orders_total or 0,
    )


def _invariant(name: str, description: str, violations: list[str]) -> InvariantOut:
    return InvariantOut(
        name=name, description=description, holds=not violations, violations=violations
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
                name=name or (SEED_ITEM_NAME if item_id == 1 else f"Item {item_id}"),
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
