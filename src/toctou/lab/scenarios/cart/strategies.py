"""Every way to take payment for a cart that is still being filled: the multi-endpoint race.

Each strategy answers two actions on one cart: ``AddItem`` (check the cart is open, then put the
item in) and ``Checkout`` (sum the items, pay that amount, mark the cart paid). ``pause(window_ms)``
is the race window: after add-item's check or claim, and in checkout after the sum, where the
payment gateway is called, before the cart is marked paid. Whatever is in the cart once it is
paid ships, so an item that lands after the sum ships unpaid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import Rejected
from toctou.lab.runtime import Lab
from toctou.lab.scenario import Claim, Strategy, strategies
from toctou.lab.scenarios.cart.ledger import CartNotFound
from toctou.lab.scenarios.cart.models import OPEN, PAID, Cart, CartItem, CartOrder
from toctou.lab.transaction import Attempted, for_update, pause

__all__ = ["STRATEGIES", "AddItem", "CartAction", "Checkout", "Done"]


@dataclass(frozen=True, slots=True)
class AddItem:
    cart_id: int
    sku: str
    price_cents: int
    strategy: str
    window_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Checkout:
    cart_id: int
    strategy: str
    window_ms: float = 0.0


CartAction = AddItem | Checkout
Done = Attempted[CartItem | CartOrder]


def _checked_out(cart_id: int) -> Rejected:
    return Rejected("checked_out", f"cart {cart_id} is paid already")


async def _open_cart(session: AsyncSession, cart_id: int, *, lock: bool = False) -> Cart:
    query = select(Cart).where(Cart.id == cart_id)
    if lock:
        query = for_update(query, session)
    cart = (await session.execute(query)).scalar_one_or_none()
    if cart is None:
        raise CartNotFound(cart_id)
    if cart.status != OPEN:
        raise _checked_out(cart_id)
    return cart


async def _why_not(session: AsyncSession, cart_id: int) -> Exception:
    """A conditional UPDATE matched nothing: the cart is missing, paid, or was changed.

    A locking read, so MariaDB answers from the latest row, not the transaction's snapshot.
    """
    status = await session.scalar(
        for_update(select(Cart.status).where(Cart.id == cart_id), session)
    )
    if status is None:
        return CartNotFound(cart_id)
    if status == PAID:
        return _checked_out(cart_id)
    return Rejected(
        "cart_changed", f"cart {cart_id} changed during checkout; review it and pay again"
    )


async def _insert_item(session: AsyncSession, add: AddItem) -> CartItem:
    item = CartItem(
        cart_id=add.cart_id,
        sku=add.sku,
        price_cents=add.price_cents,
        strategy=add.strategy,
        created_at=datetime.now(UTC),
    )
    session.add(item)
    await session.flush()
    return item


async def _sum_items(session: AsyncSession, cart_id: int) -> tuple[int, int]:
    """(items, total cents) of the cart as this transaction sees it."""
    prices = list(
        await session.scalars(select(CartItem.price_cents).where(CartItem.cart_id == cart_id))
    )
    if not prices:
        raise Rejected("empty_cart", f"cart {cart_id} holds nothing to pay for")
    return len(prices), sum(prices)


async def _record_order(session: AsyncSession, pay: Checkout, count: int, total: int) -> CartOrder:
    order = CartOrder(
        cart_id=pay.cart_id,
        amount_cents=total,
        item_count=count,
        strategy=pay.strategy,
        created_at=datetime.now(UTC),
    )
    session.add(order)
    await session.flush()
    return order


async def _check_then_act(
    session: AsyncSession, action: CartAction, *, lock: bool
) -> CartItem | CartOrder:
    cart = await _open_cart(session, action.cart_id, lock=lock)
    if isinstance(action, AddItem):
        await pause(action.window_ms)
        return await _insert_item(session, action)
    count, total = await _sum_items(session, action.cart_id)
    await pause(action.window_ms)  # the payment gateway charges `total`
    cart.status, cart.paid_cents = PAID, total
    return await _record_order(session, action, count, total)


async def cart_vulnerable(lab: Lab, action: CartAction) -> Done:
    """Checkout sums, pays, marks paid; add-item checks the cart is open, then inserts."""
    async with lab.db.sessions() as session, session.begin():
        return Attempted(await _check_then_act(session, action, lock=False))


async def cart_lock(lab: Lab, action: CartAction) -> Done:
    """Both routes lock the cart row FOR UPDATE first (SQLite: BEGIN IMMEDIATE)."""
    async with lab.db.locking_sessions() as session, session.begin():
        return Attempted(await _check_then_act(session, action, lock=True))


async def cart_version(lab: Lab, action: CartAction) -> Done:
    """Adds bump a cart version WHERE status = 'open'; payment compare-and-swaps it."""
    async with lab.db.sessions() as session, session.begin():
        if isinstance(action, AddItem):
            claimed = await session.execute(
                update(Cart)
                .where(Cart.id == action.cart_id, Cart.status == OPEN)
                .values(version=Cart.version + 1)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise await _why_not(session, action.cart_id)
            await pause(action.window_ms)
            return Attempted(await _insert_item(session, action))
        cart = await _open_cart(session, action.cart_id)
        count, total = await _sum_items(session, action.cart_id)
        await pause(action.window_ms)  # the payment gateway charges `total`
        swapped = await session.execute(
            update(Cart)
            .where(Cart.id == cart.id, Cart.version == cart.version, Cart.status == OPEN)
            .values(status=PAID, paid_cents=total, version=cart.version + 1)
            .execution_options(synchronize_session=False)
        )
        if swapped.rowcount != 1:  # type: ignore[attr-defined]
            raise await _why_not(session, action.cart_id)
        return Attempted(await _record_order(session, action, count, total))


STRATEGIES = strategies(
    Strategy(
        "vulnerable",
        cart_vulnerable,
        Claim.everywhere(
            "never",
            "an item added after checkout summed the cart, but before or after it was marked "
            "paid, ships without being paid for",
        ),
    ),
    Strategy(
        "lock",
        cart_lock,
        Claim.everywhere(
            "always",
            "adds and checkouts queue on the cart row's lock, so no add lands between the sum "
            "and the payment (SQLite: on the database's write lock, BEGIN IMMEDIATE)",
        ),
    ),
    Strategy(
        "version",
        cart_version,
        Claim.everywhere(
            "always",
            "every add bumps the version in the same transaction that inserts the item, so a "
            "payment whose sum is stale finds the version changed and answers 409 "
            "cart_changed (no retry: the customer confirms the new total); an add after the "
            "payment matches no open cart",
        ),
    ),
)
