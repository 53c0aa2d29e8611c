"""Every way to sell the last unit: the lost update, the fixes, and the false fixes.

Each strategy does the same business action: check there is stock, take it, record one order.
``Purchase.pause()`` is the race window; every strategy calls it at the same point, after the stock
was checked or claimed and before the transaction commits. With a zero window there is no sleep at
all, and the awaits on the database are still real interleaving points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.db import is_check_violation
from toctou.lab.errors import Rejected
from toctou.lab.redislock import LEASE_MS, SHORT_LEASE_MS, RedisLocks, redis_locks
from toctou.lab.runtime import Lab
from toctou.lab.scenario import Claim, Strategy, strategies
from toctou.lab.scenarios.inventory.ledger import ItemNotFound
from toctou.lab.scenarios.inventory.models import Item, Order
from toctou.lab.transaction import Attempted, StaleVersion, for_update, pause, with_retries

__all__ = ["STRATEGIES", "Purchase", "Sale"]

Sale = Attempted[Order]


@dataclass(frozen=True, slots=True)
class Purchase:
    item_id: int
    quantity: int
    buyer: str | None
    strategy: str
    window_ms: float = 0.0

    async def pause(self) -> None:
        await pause(self.window_ms)


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
        query = for_update(query, session)
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


async def _claim(session: AsyncSession, purchase: Purchase) -> bool:
    """``UPDATE ... SET stock = stock - :q WHERE id = :id AND stock >= :q``: did it take it?"""
    claimed = await session.execute(
        update(Item)
        .where(Item.id == purchase.item_id, Item.stock >= purchase.quantity)
        .values(stock=Item.stock - purchase.quantity, version=Item.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _item_lock(locks: RedisLocks, purchase: Purchase) -> list[str]:
    return [locks.key("inventory", "item", purchase.item_id)]


async def buy_vulnerable(lab: Lab, purchase: Purchase) -> Sale:
    """Check-then-act with an ORM read-modify-write: a lost update that oversells."""
    async with lab.db.sessions() as session, session.begin():
        return Attempted(await _sell_read_check_write(session, purchase, lock=False))


async def buy_atomic(lab: Lab, purchase: Purchase) -> Sale:
    """One conditional UPDATE claims the stock; the database re-checks the condition per row."""
    async with lab.db.sessions() as session, session.begin():
        if not await _claim(session, purchase):
            raise await _missing_or_sold_out(session, purchase)
        await purchase.pause()
        return Attempted(await _record_order(session, purchase))


async def buy_lock(lab: Lab, purchase: Purchase) -> Sale:
    """Pessimistic lock: SELECT ... FOR UPDATE (SQLite: the write lock taken at BEGIN IMMEDIATE)."""
    async with lab.db.locking_sessions() as session, session.begin():
        return Attempted(await _sell_read_check_write(session, purchase, lock=True))


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
                raise StaleVersion
            return await _record_order(session, purchase)

    return await with_retries(lab, attempt)


async def buy_serializable(lab: Lab, purchase: Purchase) -> Sale:
    """The vulnerable flow in a SERIALIZABLE transaction, retried on serialisation failures."""

    async def attempt() -> Order:
        async with lab.db.serializable_sessions() as session, session.begin():
            return await _sell_read_check_write(session, purchase, lock=False)

    return await with_retries(lab, attempt)


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
        return Attempted(await _record_order(session, purchase))


async def buy_mutex(lab: Lab, purchase: Purchase) -> Sale:
    """The vulnerable flow under a process-local asyncio.Lock: safe with one worker only."""
    async with lab.process_lock("inventory"):
        return await buy_vulnerable(lab, purchase)


async def buy_redis_lock(lab: Lab, purchase: Purchase) -> Sale:
    """A Redis lock per item around read-check-write; the conditional UPDATE still fences it."""
    locks = redis_locks(lab)
    async with (
        locks.hold(_item_lock(locks, purchase), lease_ms=LEASE_MS),
        lab.db.sessions() as session,
        session.begin(),
    ):
        item = await _read_item(session, purchase)
        if item.stock < purchase.quantity:
            raise _out_of_stock(item, purchase)
        await purchase.pause()
        if not await _claim(session, purchase):  # only if our lease ran out and someone sold
            raise Rejected("out_of_stock", "sold while this lease ran out; the UPDATE refused")
        return Attempted(await _record_order(session, purchase))


async def buy_redis_lock_short_ttl(lab: Lab, purchase: Purchase) -> Sale:
    """The vulnerable flow under a Redis lock whose 20 ms lease ends inside the race window."""
    locks = redis_locks(lab)
    async with locks.hold(_item_lock(locks, purchase), lease_ms=SHORT_LEASE_MS):
        return await buy_vulnerable(lab, purchase)


STRATEGIES = strategies(
    Strategy(
        "vulnerable",
        buy_vulnerable,
        Claim.everywhere(
            "never",
            "everyone reads the same stock and writes back the value they computed (lost update)",
        ),
    ),
    Strategy(
        "atomic",
        buy_atomic,
        Claim.everywhere("always", "the database re-checks stock >= quantity as it writes"),
    ),
    Strategy(
        "lock",
        buy_lock,
        Claim.everywhere(
            "always",
            "buyers queue on the row lock (SQLite: on the database's write lock, BEGIN IMMEDIATE)",
        ),
    ),
    Strategy(
        "optimistic",
        buy_optimistic,
        Claim.everywhere(
            "always",
            "a write that lost the race finds the version changed and retries",
            errors="may answer 409 contention when retries run out",
        ),
    ),
    Strategy(
        "serializable",
        buy_serializable,
        Claim.everywhere(
            "always",
            "the database aborts one of two conflicting transactions; it is retried",
            errors="may answer 409 contention when retries run out",
        ),
    ),
    Strategy(
        "constraint",
        buy_constraint,
        Claim.everywhere("always", "the relative write drives stock below 0 and CHECK refuses it"),
    ),
    Strategy(
        "mutex",
        buy_mutex,
        Claim.everywhere(
            "one-worker",
            "an asyncio.Lock serialises one process; each extra worker sells one more unit",
        ),
    ),
    Strategy(
        "redis-lock",
        buy_redis_lock,
        Claim.everywhere(
            "always",
            "buyers of one item queue on one Redis key in every worker (SET NX PX with a 10 s "
            "lease, far above any race window); the UPDATE still re-checks stock >= quantity, "
            "so a holder whose lease ran out cannot oversell",
        ),
        needs=("redis",),
    ),
    Strategy(
        "redis-lock-short-ttl",
        buy_redis_lock_short_ttl,
        Claim.everywhere(
            "never",
            "the 20 ms lease ends inside the race window: the next buyer takes the lock and reads "
            "the stock the first has not written yet, and nothing fences the write",
        ),
        needs=("redis",),
    ),
)
