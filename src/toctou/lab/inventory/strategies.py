"""Every way to sell the last unit: the lost update, the fixes, and a false fix.

Each strategy does the same business action: check there is stock, take it, record one order.
``Purchase.pause()`` is the race window; every strategy calls it at the same point, after the stock
was checked or claimed and before the transaction commits. With a zero window there is no sleep at
all, and the awaits on the database are still real interleaving points.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from toctou.lab.db import is_check_violation, is_retryable
from toctou.lab.errors import ItemNotFound, Rejected
from toctou.lab.models import Item, Order
from toctou.lab.runtime import Lab

__all__ = ["STRATEGIES", "Purchase", "Sale", "Strategy"]


@dataclass(frozen=True, slots=True)
class Purchase:
    item_id: int
    quantity: int
    buyer: str | None
    strategy: str
    window_ms: float = 0.0

    async def pause(self) -> None:
        """The race window: a delay between check and commit (none at all when it is 0)."""
        if self.window_ms > 0:
            await asyncio.sleep(self.window_ms / 1000)


@dataclass(frozen=True, slots=True)
class Sale:
    order: Order
    attempts: int = 1


def _out_of_stock(item: Item, purchase: Purchase) -> Rejected:
    return Rejected("out_of_stock", f"{item.stock} left, {purchase.quantity} asked")


async def _record_order(session: AsyncSession, purchase: Purchase) -> Order:
    order = Order(
        item_id=purchase.item_id,
        quantity=purchase.quantity,
        buyer=purchase.buyer,
        strategy=purchase.strategy,
        created_at=datetime.now(UTC),
    )
    session.add(order)
    await session.flush()
    return order


async def _read_item(session: AsyncSession, purchase: Purchase, *, lock: bool = False) -> Item:
    query = select(Item).where(Item.id == purchase.item_id)
    if lock:
        # FOR NO KEY UPDATE on PostgreSQL, so the order's foreign key check does not wait on it.
        query = query.with_for_update(key_share=session.get_bind().dialect.name == "postgresql")
    item = (await session.execute(query)).scalar_one_or_none()
    if item is None:
        raise ItemNotFound(purchase.item_id)
    return item


async def _sell_read_check_write(session: AsyncSession, purchase: Purchase, *, lock: bool) -> Order:
    item = await _read_item(session, purchase, lock=lock)
    if item.stock < purchase.quantity:
        raise _out_of_stock(item, purchase)
    await purchase.pause()
    # The ORM writes the value computed here: SET stock = <absolute number>.
    item.stock = item.stock - purchase.quantity
    item.version = item.version + 1
    return await _record_order(session, purchase)


async def _missing_or_sold_out(session: AsyncSession, purchase: Purchase) -> Rejected:
    item = await session.get(Item, purchase.item_id)
    if item is None:
        raise ItemNotFound(purchase.item_id)
    return _out_of_stock(item, purchase)


class _StaleVersion(Exception):
    """Someone else changed the row between our read and our compare-and-swap."""


def _retrying(attempts: int) -> AsyncRetrying:
    # tenacity: bounded attempts, full-jitter exponential backoff (0..2 ms * 2^n, cap 50 ms).
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.002, max=0.05),
        retry=retry_if_exception(lambda e: isinstance(e, _StaleVersion) or is_retryable(e)),
    )


async def _with_retries(lab: Lab, attempt: Callable[[], Awaitable[Order]]) -> Sale:
    try:
        async for try_ in _retrying(lab.settings.retry_attempts):
            with try_:
                order = await attempt()
            outcome = try_.retry_state.outcome
            if outcome is not None and not outcome.failed:  # failed attempts loop round again
                return Sale(order, try_.retry_state.attempt_number)
    except RetryError as exc:
        raise Rejected(
            "contention", f"gave up after {exc.last_attempt.attempt_number} attempts"
        ) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


async def buy_vulnerable(lab: Lab, purchase: Purchase) -> Sale:
    """Check-then-act with an ORM read-modify-write: a lost update that oversells."""
    async with lab.db.sessions() as session, session.begin():
        return Sale(await _sell_read_check_write(session, purchase, lock=False))


async def buy_atomic(lab: Lab, purchase: Purchase) -> Sale:
    """One conditional UPDATE claims the stock; the database re-checks the condition per row."""
    async with lab.db.sessions() as session, session.begin():
        claimed = await session.execute(
            update(Item)
            .where(Item.id == purchase.item_id, Item.stock >= purchase.quantity)
            .values(stock=Item.stock - purchase.quantity, version=Item.version + 1)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise await _missing_or_sold_out(session, purchase)
        await purchase.pause()
        return Sale(await _record_order(session, purchase))


async def buy_lock(lab: Lab, purchase: Purchase) -> Sale:
    """Pessimistic lock: SELECT ... FOR UPDATE (SQLite: the write lock taken at BEGIN IMMEDIATE)."""
    async with lab.db.locking_sessions() as session, session.begin():
        return Sale(await _sell_read_check_write(session, purchase, lock=True))


async def buy_optimistic(lab: Lab, purchase: Purchase) -> Sale:
    """Compare-and-swap on a version column; a lost race retries the whole read-check-write."""

    async def attempt() -> Order:
        async with lab.db.sessions() as session, session.begin():
            item = await _read_item(session, purchase)
            if item.stock < purchase.quantity:
                raise _out_of_stock(item, purchase)
            await purchase.pause()
            swapped = await session.execute(
                update(Item)
                .where(Item.id == item.id, Item.version == item.version)
                .values(stock=item.stock - purchase.quantity, version=item.version + 1)
                .execution_options(synchronize_session=False)
            )
            if swapped.rowcount != 1:  # type: ignore[attr-defined]
                raise _StaleVersion
            return await _record_order(session, purchase)

    return await _with_retries(lab, attempt)


async def buy_serializable(lab: Lab, purchase: Purchase) -> Sale:
    """The vulnerable flow in a SERIALIZABLE transaction, retried on serialisation failures."""

    async def attempt() -> Order:
        async with lab.db.serializable_sessions() as session, session.begin():
            return await _sell_read_check_write(session, purchase, lock=False)

    return await _with_retries(lab, attempt)


async def buy_constraint(lab: Lab, purchase: Purchase) -> Sale:
    """A relative write with no check at all; only CHECK (stock >= 0) stops the oversell."""
    async with lab.db.sessions() as session, session.begin():
        try:
            taken = await session.execute(
                update(Item)
                .where(Item.id == purchase.item_id)
                .values(stock=Item.stock - purchase.quantity, version=Item.version + 1)
                .execution_options(synchronize_session=False)
            )
        except DBAPIError as exc:
            if is_check_violation(exc):
                raise Rejected("out_of_stock", "CHECK (stock >= 0) refused the write") from None
            raise
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise ItemNotFound(purchase.item_id)
        await purchase.pause()
        return Sale(await _record_order(session, purchase))


async def buy_mutex(lab: Lab, purchase: Purchase) -> Sale:
    """The vulnerable flow under a process-local asyncio.Lock: safe with one worker only."""
    async with lab.mutex:
        return await buy_vulnerable(lab, purchase)


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    buy: Callable[[Lab, Purchase], Awaitable[Sale]]
    safe: str

    @property
    def summary(self) -> str:
        return (self.buy.__doc__ or "").strip()


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("vulnerable", buy_vulnerable, "nowhere: oversells on every backend"),
        Strategy("atomic", buy_atomic, "every backend"),
        Strategy("lock", buy_lock, "every backend"),
        Strategy("optimistic", buy_optimistic, "every backend (may answer contention)"),
        Strategy("serializable", buy_serializable, "every backend (may answer contention)"),
        Strategy("constraint", buy_constraint, "every backend"),
        Strategy("mutex", buy_mutex, "one worker process only: oversells with several"),
    )
}
