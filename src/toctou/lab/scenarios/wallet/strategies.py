"""Every way to spend a balance once: the double spend, the fixes, and three false fixes.

A withdrawal and a transfer are one ``Movement``: a debit of one account that must not overdraw
it, and for a transfer a credit of another. Each strategy does both with the same code, touching
the accounts' rows in id order (``Movement.accounts``), so two opposite transfers lock them in
the same order and never deadlock. ``Movement.pause()`` is the race window; every strategy calls
it at the same point, after the balance was checked or claimed and before the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
from toctou.lab.scenarios.wallet.ledger import AccountNotFound
from toctou.lab.scenarios.wallet.models import Account, Transfer, Withdrawal
from toctou.lab.transaction import Attempted, StaleVersion, for_update, pause, with_retries

__all__ = ["STRATEGIES", "Done", "Entry", "Movement"]

Entry = Withdrawal | Transfer
Done = Attempted[Entry]


@dataclass(frozen=True, slots=True)
class Movement:
    """Debit ``amount`` from ``debit``; credit it to ``credit`` (a transfer) or to no one."""

    debit: int
    amount: int
    strategy: str
    credit: int | None = None
    window_ms: float = 0.0

    @property
    def accounts(self) -> list[int]:
        """The accounts touched, in id order: the order every strategy reads and writes them."""
        return sorted(self.parties)

    @property
    def parties(self) -> list[int]:
        """The debited account, then the credited one (if any): the order 404s are checked."""
        return [self.debit] if self.credit is None else [self.debit, self.credit]

    def delta(self, account_id: int) -> int:
        return -self.amount if account_id == self.debit else self.amount

    async def pause(self) -> None:
        await pause(self.window_ms)

    async def record(self, session: AsyncSession) -> Entry:
        """Write the ledger row (flushing every pending write with it)."""
        now = datetime.now(UTC)
        entry: Entry
        if self.credit is None:
            entry = Withdrawal(
                account_id=self.debit,
                amount_cents=self.amount,
                strategy=self.strategy,
                created_at=now,
            )
        else:
            entry = Transfer(
                from_account=self.debit,
                to_account=self.credit,
                amount_cents=self.amount,
                strategy=self.strategy,
                created_at=now,
            )
        session.add(entry)
        await session.flush()
        return entry


def _insufficient(account_id: int, balance: int, move: Movement) -> Rejected:
    return Rejected(
        "insufficient_funds", f"account {account_id} has {balance} cents, {move.amount} asked"
    )


@contextmanager
def _check_constraint_refuses() -> Iterator[None]:
    """CHECK (balance_cents >= 0) refusing a write is a business outcome: 409."""
    try:
        yield
    except DBAPIError as exc:
        if is_check_violation(exc):
            raise Rejected(
                "insufficient_funds", "CHECK (balance_cents >= 0) refused the write"
            ) from None
        raise


async def _read_accounts(
    session: AsyncSession, move: Movement, *, lock: bool = False
) -> dict[int, Account]:
    """The movement's accounts by id, read (and with ``lock`` locked) one by one in id order;
    404 for a missing one, the debited account first."""
    found = {}
    for account_id in move.accounts:
        query = select(Account).where(Account.id == account_id)
        if lock:
            query = for_update(query, session)
        account = (await session.execute(query)).scalar_one_or_none()
        if account is not None:
            found[account_id] = account
    for wanted in move.parties:
        if wanted not in found:
            raise AccountNotFound(wanted)
    return found


async def _require_accounts(session: AsyncSession, move: Movement) -> None:
    """404 for a missing account (the debited one first); reads no balance."""
    rows = await session.scalars(select(Account.id).where(Account.id.in_(move.accounts)))
    present = set(rows)
    for wanted in move.parties:
        if wanted not in present:
            raise AccountNotFound(wanted)


async def _read_check_write(
    session: AsyncSession, move: Movement, *, lock: bool = False, check: bool = True
) -> Entry:
    accounts = await _read_accounts(session, move, lock=lock)
    source = accounts[move.debit]
    if check and source.balance_cents < move.amount:
        raise _insufficient(source.id, source.balance_cents, move)
    await move.pause()
    # The ORM writes the values computed here: SET balance_cents = <absolute number>; its flush
    # sorts the UPDATEs by primary key, so they too take the row locks in id order.
    for account in accounts.values():
        account.balance_cents = account.balance_cents + move.delta(account.id)
        account.version = account.version + 1
    return await move.record(session)


async def _write_conditionally(session: AsyncSession, move: Movement) -> None:
    """One relative UPDATE per account in id order, the debit's with ``WHERE balance_cents >=
    amount``, re-checked on the latest row; 404 or 409 insufficient_funds if a row refuses."""
    for account_id in move.accounts:
        write = update(Account).where(Account.id == account_id)
        if account_id == move.debit:
            write = write.where(Account.balance_cents >= move.amount)
        written = await session.execute(
            write.values(
                balance_cents=Account.balance_cents + move.delta(account_id),
                version=Account.version + 1,
            ).execution_options(synchronize_session=False)
        )
        if written.rowcount != 1:  # type: ignore[attr-defined]
            await _require_accounts(session, move)
            balance = await session.scalar(
                select(Account.balance_cents).where(Account.id == move.debit)
            )
            raise _insufficient(move.debit, balance or 0, move)


def _account_locks(locks: RedisLocks, move: Movement) -> list[str]:
    return [locks.key("wallet", "account", account_id) for account_id in move.accounts]


async def move_vulnerable(lab: Lab, move: Movement) -> Done:
    """Check-then-act with an ORM read-modify-write: a lost update that spends money twice."""
    async with lab.db.sessions() as session, session.begin():
        return Attempted(await _read_check_write(session, move))


async def move_atomic(lab: Lab, move: Movement) -> Done:
    """One conditional UPDATE per account: the debit's WHERE balance >= amount is re-checked."""
    async with lab.db.sessions() as session, session.begin():
        await _write_conditionally(session, move)
        await move.pause()
        return Attempted(await move.record(session))


async def move_lock(lab: Lab, move: Movement) -> Done:
    """Pessimistic lock: SELECT ... FOR UPDATE in id order (SQLite: BEGIN IMMEDIATE)."""
    async with lab.db.locking_sessions() as session, session.begin():
        return Attempted(await _read_check_write(session, move, lock=True))


async def move_optimistic(lab: Lab, move: Movement) -> Done:
    """Compare-and-swap on a version column; a lost race retries the whole read-check-write."""

    async def attempt() -> Entry:
        async with lab.db.sessions() as session, session.begin():
            accounts = await _read_accounts(session, move)
            source = accounts[move.debit]
            if source.balance_cents < move.amount:
                raise _insufficient(source.id, source.balance_cents, move)
            await move.pause()
            for account in accounts.values():
                swapped = await session.execute(
                    update(Account)
                    .where(Account.id == account.id, Account.version == account.version)
                    .values(
                        balance_cents=account.balance_cents + move.delta(account.id),
                        version=account.version + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                if swapped.rowcount != 1:  # type: ignore[attr-defined]
                    raise StaleVersion
            return await move.record(session)

    return await with_retries(lab, attempt)


async def move_serializable(lab: Lab, move: Movement) -> Done:
    """The vulnerable flow in a SERIALIZABLE transaction, retried on serialisation failures."""

    async def attempt() -> Entry:
        async with lab.db.serializable_sessions() as session, session.begin():
            return await _read_check_write(session, move)

    return await with_retries(lab, attempt)


async def move_constraint(lab: Lab, move: Movement) -> Done:
    """Relative writes with no balance check; only CHECK (balance_cents >= 0) stops the debit."""
    async with lab.db.sessions() as session, session.begin():
        await _require_accounts(session, move)
        for account_id in move.accounts:
            with _check_constraint_refuses():
                written = await session.execute(
                    update(Account)
                    .where(Account.id == account_id)
                    .values(
                        balance_cents=Account.balance_cents + move.delta(account_id),
                        version=Account.version + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
            if written.rowcount != 1:  # type: ignore[attr-defined]
                raise AccountNotFound(account_id)
        await move.pause()
        return Attempted(await move.record(session))


async def move_check_orm(lab: Lab, move: Movement) -> Done:
    """The same CHECK with an ORM absolute write: a stale read writes 0, so it never fires."""
    async with lab.db.sessions() as session, session.begin():
        with _check_constraint_refuses():
            return Attempted(await _read_check_write(session, move, check=False))


async def move_mutex(lab: Lab, move: Movement) -> Done:
    """The vulnerable flow under a process-local asyncio.Lock: safe with one worker only."""
    async with lab.process_lock("wallet"):
        return await move_vulnerable(lab, move)


async def move_redis_lock(lab: Lab, move: Movement) -> Done:
    """A Redis lock per account around read-check-write; conditional UPDATEs still fence it."""
    locks = redis_locks(lab)
    async with (
        locks.hold(_account_locks(locks, move), lease_ms=LEASE_MS),
        lab.db.sessions() as session,
        session.begin(),
    ):
        source = (await _read_accounts(session, move))[move.debit]
        if source.balance_cents < move.amount:
            raise _insufficient(source.id, source.balance_cents, move)
        await move.pause()
        await _write_conditionally(session, move)  # refuses only if our lease ran out meanwhile
        return Attempted(await move.record(session))


async def move_redis_lock_short_ttl(lab: Lab, move: Movement) -> Done:
    """The vulnerable flow under Redis locks whose 20 ms lease ends inside the race window."""
    locks = redis_locks(lab)
    async with locks.hold(_account_locks(locks, move), lease_ms=SHORT_LEASE_MS):
        return await move_vulnerable(lab, move)


STRATEGIES = strategies(
    Strategy(
        "vulnerable",
        move_vulnerable,
        Claim.everywhere(
            "never",
            "everyone reads the same balance and writes back the value they computed "
            "(lost update): the balance is spent once per request",
        ),
    ),
    Strategy(
        "atomic",
        move_atomic,
        Claim.everywhere(
            "always", "the database re-checks balance >= amount on the latest row as it writes"
        ),
    ),
    Strategy(
        "lock",
        move_lock,
        Claim.everywhere(
            "always",
            "requests queue on the row locks, taken in id order so opposite transfers cannot "
            "deadlock (SQLite: on the database's write lock, BEGIN IMMEDIATE)",
        ),
    ),
    Strategy(
        "optimistic",
        move_optimistic,
        Claim.everywhere(
            "always",
            "a write that lost the race finds the version changed and retries",
            errors="may answer 409 contention when retries run out",
        ),
    ),
    Strategy(
        "serializable",
        move_serializable,
        Claim.everywhere(
            "always",
            "the database aborts one of two conflicting transactions (PostgreSQL 40001, MariaDB "
            "deadlock 1213, SQLite busy snapshot on its real BEGIN); it is retried",
            errors="may answer 409 contention when retries run out",
        ),
    ),
    Strategy(
        "constraint",
        move_constraint,
        Claim.everywhere(
            "always", "the relative write drives the balance below 0 and CHECK refuses it"
        ),
    ),
    Strategy(
        "check-orm",
        move_check_orm,
        Claim.everywhere(
            "never",
            "the ORM writes the absolute balance computed from a stale read: the lost update "
            "keeps it at 0, so CHECK (balance_cents >= 0) never fires",
        ),
    ),
    Strategy(
        "mutex",
        move_mutex,
        Claim.everywhere(
            "one-worker",
            "an asyncio.Lock serialises one process; each extra worker spends the balance again",
        ),
    ),
    Strategy(
        "redis-lock",
        move_redis_lock,
        Claim.everywhere(
            "always",
            "requests queue on one Redis key per account in every worker (SET NX PX with a 10 s "
            "lease, far above any race window; a transfer takes both keys in one sorted order); "
            "the debit's UPDATE still re-checks balance >= amount, so a holder whose lease ran "
            "out cannot overdraw",
        ),
        needs=("redis",),
    ),
    Strategy(
        "redis-lock-short-ttl",
        move_redis_lock_short_ttl,
        Claim.everywhere(
            "never",
            "the 20 ms lease ends inside the race window: the next request takes the lock and "
            "reads the balance the first has not written yet, and nothing fences the write",
        ),
        needs=("redis",),
    ),
)
