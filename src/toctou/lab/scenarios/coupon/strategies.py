"""Every way to redeem a code with a use limit: the overrun, the fixes, and two false fixes.

Each strategy does the same business action: check the code has uses left, count one more use,
record one redemption. ``pause(window_ms)`` is the race window; every strategy calls it after the
check or the claim and before the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.db import is_unique_violation
from toctou.lab.errors import Rejected
from toctou.lab.runtime import Lab
from toctou.lab.scenario import Claim, Strategy, strategies
from toctou.lab.scenarios.coupon.ledger import CodeNotFound
from toctou.lab.scenarios.coupon.models import CouponCode, Redemption
from toctou.lab.transaction import Attempted, StaleVersion, for_update, pause, with_retries

__all__ = ["STRATEGIES", "Redeem", "Redeemed"]

Redeemed = Attempted[Redemption]


@dataclass(frozen=True, slots=True)
class Redeem:
    code: str
    order_ref: str
    strategy: str
    window_ms: float = 0.0


def _used_up(code: str, uses: int, max_uses: int) -> Rejected:
    return Rejected("limit_reached", f"code {code} used {uses} of {max_uses} times", code=code)


async def _read_code(session: AsyncSession, redeem: Redeem, *, lock: bool = False) -> CouponCode:
    query = select(CouponCode).where(CouponCode.code == redeem.code)
    if lock:
        query = for_update(query, session)
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise CodeNotFound(redeem.code)
    return row


async def _record(session: AsyncSession, redeem: Redeem, slot: int | None = None) -> Redemption:
    redemption = Redemption(
        code=redeem.code,
        order_ref=redeem.order_ref,
        slot=slot,
        strategy=redeem.strategy,
        created_at=datetime.now(UTC),
    )
    session.add(redemption)
    await session.flush()
    return redemption


async def _redeem_read_check_write(
    session: AsyncSession, redeem: Redeem, *, lock: bool = False
) -> Redemption:
    row = await _read_code(session, redeem, lock=lock)
    if row.uses >= row.max_uses:
        raise _used_up(row.code, row.uses, row.max_uses)
    await pause(redeem.window_ms)
    # The ORM writes the value computed here: SET uses = <absolute number>.
    row.uses = row.uses + 1
    await session.flush()  # the code row first, then the redemption that references it
    return await _record(session, redeem)


async def redeem_vulnerable(lab: Lab, redeem: Redeem) -> Redeemed:
    """Check-then-act: read uses, write back uses + 1 computed in Python, record a redemption."""
    async with lab.db.sessions() as session, session.begin():
        return Attempted(await _redeem_read_check_write(session, redeem))


async def redeem_atomic(lab: Lab, redeem: Redeem) -> Redeemed:
    """One conditional UPDATE claims a use: SET uses = uses + 1 WHERE uses < max_uses."""
    async with lab.db.sessions() as session, session.begin():
        claimed = await session.execute(
            update(CouponCode)
            .where(CouponCode.code == redeem.code, CouponCode.uses < CouponCode.max_uses)
            .values(uses=CouponCode.uses + 1)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            row = await _read_code(session, redeem)  # 404 if the code does not exist
            raise _used_up(row.code, row.uses, row.max_uses)
        await pause(redeem.window_ms)
        return Attempted(await _record(session, redeem))


async def redeem_lock(lab: Lab, redeem: Redeem) -> Redeemed:
    """Pessimistic lock: SELECT ... FOR UPDATE (SQLite: the write lock taken at BEGIN IMMEDIATE)."""
    async with lab.db.locking_sessions() as session, session.begin():
        return Attempted(await _redeem_read_check_write(session, redeem, lock=True))


async def redeem_unique(lab: Lab, redeem: Redeem) -> Redeemed:
    """UNIQUE(code, slot) on redemptions: use number `slot` (checked <= max_uses) exists once."""

    async def attempt() -> Redemption:
        async with lab.db.sessions() as session, session.begin():
            limit = (await _read_code(session, redeem)).max_uses  # kept: a failed flush expires it
            used = await session.scalar(
                select(func.count(Redemption.id)).where(Redemption.code == redeem.code)
            )
            slot = (used or 0) + 1
            if slot > limit:
                raise _used_up(redeem.code, slot - 1, limit)
            await pause(redeem.window_ms)
            await session.execute(
                update(CouponCode)
                .where(CouponCode.code == redeem.code)
                .values(uses=CouponCode.uses + 1)
                .execution_options(synchronize_session=False)
            )
            try:
                return await _record(session, redeem, slot=slot)
            except DBAPIError as exc:
                if not is_unique_violation(exc):
                    raise
                if slot < limit:  # someone took this use; a later one may be free
                    raise StaleVersion from None
                raise _used_up(redeem.code, slot, limit) from None

    return await with_retries(lab, attempt)


async def redeem_serializable(lab: Lab, redeem: Redeem) -> Redeemed:
    """The vulnerable flow in a SERIALIZABLE transaction, retried on serialisation failures."""

    async def attempt() -> Redemption:
        async with lab.db.serializable_sessions() as session, session.begin():
            return await _redeem_read_check_write(session, redeem)

    return await with_retries(lab, attempt)


async def redeem_repeatable_read(lab: Lab, redeem: Redeem) -> Redeemed:
    """The vulnerable flow in a REPEATABLE READ transaction, retried on serialisation failures."""

    async def attempt() -> Redemption:
        if lab.db.backend == "sqlite":  # SQLAlchemy's SQLite dialect has no REPEATABLE READ
            async with lab.db.serializable_sessions() as session, session.begin():
                return await _redeem_read_check_write(session, redeem)
        async with lab.db.sessions() as session, session.begin():
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            return await _redeem_read_check_write(session, redeem)

    return await with_retries(lab, attempt)


async def redeem_mutex(lab: Lab, redeem: Redeem) -> Redeemed:
    """The vulnerable flow under a process-local asyncio.Lock: safe with one worker only."""
    async with lab.process_lock("coupon"):
        return await redeem_vulnerable(lab, redeem)


_RETRIES = "may answer 409 contention when retries run out"

STRATEGIES = strategies(
    Strategy(
        "vulnerable",
        redeem_vulnerable,
        Claim.everywhere(
            "never",
            "every checkout reads the same uses, finds one left, and writes back the same "
            "uses + 1 (a lost update): each one redeems",
        ),
    ),
    Strategy(
        "atomic",
        redeem_atomic,
        Claim.everywhere("always", "the database re-checks uses < max_uses as it writes"),
    ),
    Strategy(
        "lock",
        redeem_lock,
        Claim.everywhere(
            "always",
            "checkouts queue on the code's row lock (SQLite: on the database's write lock, "
            "BEGIN IMMEDIATE; a plain FOR UPDATE would be dropped there)",
        ),
    ),
    Strategy(
        "unique",
        redeem_unique,
        Claim.everywhere(
            "always",
            "two checkouts that read the same count claim the same slot and the index refuses "
            "the second; with max_uses above 1 a refused slot retries with the next one",
            errors=_RETRIES,
        ),
    ),
    Strategy(
        "serializable",
        redeem_serializable,
        Claim.everywhere(
            "always",
            "the database aborts one of two conflicting transactions (PostgreSQL 40001, "
            "MariaDB deadlock 1213, SQLite busy on the deferred BEGIN's upgrade); it is retried",
            errors=_RETRIES,
        ),
    ),
    Strategy(
        "repeatable-read",
        redeem_repeatable_read,
        Claim(
            sqlite="always",
            postgresql="always",
            mariadb="never",
            why="PostgreSQL's REPEATABLE READ refuses to update a row changed since the snapshot "
            "(40001) and the retry sees the use; MariaDB 10.11's (innodb_snapshot_isolation OFF, "
            "pinned so by the lab) raises nothing, so it never retries and overruns: a false fix. "
            "SQLite has no REPEATABLE READ in SQLAlchemy: it runs as SQLite's deferred BEGIN "
            "(serializable) + retry",
            errors=_RETRIES,
        ),
    ),
    Strategy(
        "mutex",
        redeem_mutex,
        Claim.everywhere(
            "one-worker",
            "an asyncio.Lock serialises one process; each extra worker redeems the code once more",
        ),
    ),
)
