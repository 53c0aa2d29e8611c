"""Reading, auditing and resetting the carts: did each paid cart charge what it ships?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import NotFound
from toctou.lab.scenario import Audit, Check, NoScope
from toctou.lab.scenarios.cart.models import OPEN, Cart, CartItem, CartOrder
from toctou.lab.scenarios.cart.schemas import (
    CartAudit,
    CartItemOut,
    CartOrderOut,
    CartOut,
    CartState,
)

__all__ = [
    "INVARIANTS",
    "SEED_CART",
    "SEED_ITEMS",
    "CartNotFound",
    "audit",
    "read_cart",
    "reset",
    "seed",
]

SEED_CART = 1
SEED_ITEMS = (("book", 1500), ("mug", 900))  # (sku, price_cents): cart 1 holds 2,400 cents

INVARIANTS = {
    "paid_equals_shipped": "a paid cart's orders charged exactly the sum of the items it ships",
}


class CartNotFound(NotFound):
    def __init__(self, cart_id: int) -> None:
        super().__init__("cart_not_found", f"no cart with id {cart_id}")
        self.cart_id = cart_id


@dataclass(frozen=True, slots=True)
class CartView:
    id: int
    status: str
    version: int
    item_count: int
    total_cents: int
    paid_cents: int
    order_count: int

    @property
    def unpaid_cents(self) -> int:
        """Cents of items that ship (the cart is paid) but that no order charged."""
        return max(0, self.total_cents - self.paid_cents) if self.order_count else 0

    @property
    def overpaid_cents(self) -> int:
        return max(0, self.paid_cents - self.total_cents) if self.order_count else 0

    @property
    def damage(self) -> int:
        return self.unpaid_cents + self.overpaid_cents

    def out(self) -> CartAudit:
        return CartAudit(
            id=self.id,
            status=self.status,
            item_count=self.item_count,
            total_cents=self.total_cents,
            paid_cents=self.paid_cents,
            order_count=self.order_count,
            unpaid_cents=self.unpaid_cents,
            overpaid_cents=self.overpaid_cents,
        )


async def read_carts(session: AsyncSession, cart_id: int | None = None) -> list[CartView]:
    items = (
        select(
            CartItem.cart_id,
            func.count(CartItem.id).label("n"),
            func.sum(CartItem.price_cents).label("cents"),
        )
        .group_by(CartItem.cart_id)
        .subquery()
    )
    orders = (
        select(
            CartOrder.cart_id,
            func.count(CartOrder.id).label("n"),
            func.sum(CartOrder.amount_cents).label("cents"),
        )
        .group_by(CartOrder.cart_id)
        .subquery()
    )
    query = (
        select(
            Cart.id,
            Cart.status,
            Cart.version,
            func.coalesce(items.c.n, 0),
            func.coalesce(items.c.cents, 0),
            func.coalesce(orders.c.cents, 0),
            func.coalesce(orders.c.n, 0),
        )
        .outerjoin(items, items.c.cart_id == Cart.id)
        .outerjoin(orders, orders.c.cart_id == Cart.id)
        .order_by(Cart.id)
    )
    if cart_id is not None:
        query = query.where(Cart.id == cart_id)
    rows = await session.execute(query)
    # SUM() comes back as Decimal on PostgreSQL and MariaDB, hence int().
    return [
        CartView(int(id_), status, int(version), int(n), int(total), int(paid), int(orders_n))
        for id_, status, version, n, total, paid, orders_n in rows
    ]


async def read_cart(session: AsyncSession, cart_id: int) -> CartOut:
    """One cart with its items and orders."""
    views = await read_carts(session, cart_id)
    if not views:
        raise CartNotFound(cart_id)
    view = views[0]
    items = await session.scalars(
        select(CartItem).where(CartItem.cart_id == cart_id).order_by(CartItem.id)
    )
    orders = await session.scalars(
        select(CartOrder).where(CartOrder.cart_id == cart_id).order_by(CartOrder.id)
    )
    return CartOut(
        **view.out().model_dump(),
        version=view.version,
        items=[CartItemOut.model_validate(i, from_attributes=True) for i in items],
        orders=[CartOrderOut.model_validate(o, from_attributes=True) for o in orders],
    )


async def _state(session: AsyncSession) -> tuple[list[CartView], CartState]:
    carts = await read_carts(session)
    added = await session.scalar(
        select(func.count(CartItem.id)).where(CartItem.strategy.is_not(None))
    )
    orders = await session.scalar(select(func.count(CartOrder.id)))
    state = CartState(
        carts=[c.out() for c in carts], items_added=added or 0, orders_total=orders or 0
    )
    return carts, state


async def audit(session: AsyncSession, _scope: NoScope) -> Audit:
    """Each paid cart: what its orders charged against what it ships."""
    carts, state = await _state(session)
    check = Check(
        "paid_equals_shipped",
        [
            f"cart {c.id}: {c.order_count} order(s) charged {c.paid_cents} cents, it ships "
            f"{c.item_count} items worth {c.total_cents} "
            f"({c.unpaid_cents} shipped unpaid, {c.overpaid_cents} paid for nothing)"
            for c in carts
            if c.damage
        ],
    )
    return Audit(
        checks=[check],
        damage=sum(c.damage for c in carts),
        effects=state.items_added + state.orders_total,
        state=state,
    )


def _seed_rows() -> list[Cart | CartItem]:
    now = datetime.now(UTC)
    cart: list[Cart | CartItem] = [Cart(id=SEED_CART, status=OPEN, version=0, paid_cents=None)]
    return cart + [
        CartItem(cart_id=SEED_CART, sku=sku, price_cents=cents, strategy=None, created_at=now)
        for sku, cents in SEED_ITEMS
    ]


async def reset(session: AsyncSession, _scope: NoScope) -> CartState:
    """Back to the seed: cart 1, open, holding the seed's two items; no orders, no other carts."""
    await session.execute(delete(CartOrder))
    await session.execute(delete(CartItem))
    await session.execute(delete(Cart))
    for row in _seed_rows():  # the cart first: the items reference it
        session.add(row)
        await session.flush()
    return (await _state(session))[1]


async def seed(session: AsyncSession) -> None:
    """Cart 1 with its two items, unless it is there already."""
    if await session.get(Cart, SEED_CART) is None:
        for row in _seed_rows():
            session.add(row)
            await session.flush()
