"""Every way to sign up a name only once: check-then-insert, a lock that has nothing to lock,
SERIALIZABLE, and the UNIQUE constraint.

Each strategy does the same business action: make sure the username and the email are free,
then insert the account. ``pause(window_ms)`` is the race window, after the check (or, for
``unique``, after the insert that is the claim) and before the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import Rejected
from toctou.lab.runtime import Lab
from toctou.lab.scenario import Claim, Strategy, strategies
from toctou.lab.scenarios.signup.models import UniqueUser, User
from toctou.lab.transaction import Attempted, for_update, pause, with_retries

__all__ = ["STRATEGIES", "Registration", "SignedUp"]


@dataclass(frozen=True, slots=True)
class Registration:
    username: str
    email: str
    strategy: str
    window_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class SignedUp:
    """The row a sign-up wrote, and which table it went to."""

    id: int
    username: str
    email: str
    table: str
    strategy: str
    created_at: datetime


async def _check_free(session: AsyncSession, reg: Registration, *, lock: bool = False) -> None:
    query = select(User).where(or_(User.username == reg.username, User.email == reg.email))
    if lock:
        query = for_update(query, session)
    found = (await session.execute(query.limit(1))).scalar_one_or_none()
    if found is not None:
        what = f"username {reg.username!r}" if found.username == reg.username else "the email"
        raise Rejected("taken", f"{what} is registered already")


async def _check_then_insert(session: AsyncSession, reg: Registration, *, lock: bool) -> SignedUp:
    await _check_free(session, reg, lock=lock)
    await pause(reg.window_ms)
    user = User(
        username=reg.username,
        email=reg.email,
        strategy=reg.strategy,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    await session.flush()
    return SignedUp(
        user.id, user.username, user.email, User.__tablename__, reg.strategy, user.created_at
    )


async def register_vulnerable(lab: Lab, reg: Registration) -> Attempted[SignedUp]:
    """Check-then-insert: SELECT by username or email, INSERT if none (no constraint)."""
    async with lab.db.sessions() as session, session.begin():
        return Attempted(await _check_then_insert(session, reg, lock=False))


async def register_lock(lab: Lab, reg: Registration) -> Attempted[SignedUp]:
    """The same check under SELECT ... FOR UPDATE (SQLite: BEGIN IMMEDIATE)."""
    async with lab.db.locking_sessions() as session, session.begin():
        return Attempted(await _check_then_insert(session, reg, lock=True))


async def register_serializable(lab: Lab, reg: Registration) -> Attempted[SignedUp]:
    """Check-then-insert in a SERIALIZABLE transaction, retried on serialisation failures."""

    async def attempt() -> SignedUp:
        async with lab.db.serializable_sessions() as session, session.begin():
            return await _check_then_insert(session, reg, lock=False)

    return await with_retries(lab, attempt)


async def register_unique(lab: Lab, reg: Registration) -> Attempted[SignedUp]:
    """UNIQUE(username), UNIQUE(email) and INSERT ... ON CONFLICT DO NOTHING (MariaDB: IGNORE)."""
    now = datetime.now(UTC)
    values = {
        "username": reg.username,
        "email": reg.email,
        "strategy": reg.strategy,
        "created_at": now,
    }
    async with lab.db.sessions() as session, session.begin():
        new_id: int | None
        if lab.db.backend == "mariadb":  # no RETURNING on an ignored row: the rowcount says it
            result = await session.execute(insert(UniqueUser).prefix_with("IGNORE").values(values))
            new_id = result.inserted_primary_key[0] if result.rowcount == 1 else None  # type: ignore[attr-defined]
        else:
            dialect_insert = postgresql.insert if lab.db.backend == "postgresql" else sqlite.insert
            new_id = (
                await session.execute(
                    dialect_insert(UniqueUser)
                    .values(values)
                    .on_conflict_do_nothing()
                    .returning(UniqueUser.id)
                )
            ).scalar_one_or_none()
        if new_id is None:
            raise Rejected("taken", f"username {reg.username!r} or the email is registered already")
        await pause(reg.window_ms)
        return Attempted(
            SignedUp(new_id, reg.username, reg.email, UniqueUser.__tablename__, reg.strategy, now)
        )


STRATEGIES = strategies(
    Strategy(
        "vulnerable",
        register_vulnerable,
        Claim.everywhere(
            "never",
            "every request checks before any has inserted, and nothing in the table refuses "
            "the second row",
        ),
    ),
    Strategy(
        "lock",
        register_lock,
        Claim(
            sqlite="always",
            postgresql="never",
            mariadb="always",
            why="PostgreSQL: FOR UPDATE locks rows that exist, and there is none yet "
            "(databases.md C.8). MariaDB: the locking read takes gap locks on the username and "
            "email indexes, so all inserts but one deadlock (C.9). SQLite: the lab's lock is "
            "BEGIN IMMEDIATE (lab.db.locking_sessions), which serialises every sign-up; "
            "databases.md's 'FOR UPDATE dropped' row (50 duplicates) is a bare "
            "with_for_update(), which SQLite renders as nothing",
            errors="MariaDB: the requests that lose a gap-lock deadlock (1213) answer 503 "
            "database_busy (measured: 9 of 50 over 5 rounds of 10 at a 50 ms window)",
        ),
    ),
    Strategy(
        "serializable",
        register_serializable,
        Claim.everywhere(
            "always",
            "PostgreSQL's SSI predicate locks see the other's insert and abort it (40001); "
            "MariaDB's SERIALIZABLE turns the check into a shared gap lock, so the inserts "
            "deadlock (1213); SQLite has one writer (SQLITE_BUSY); each is retried and the "
            "retry finds the name taken",
            errors="MariaDB: the deadlocks can livelock until the retries run out "
            "(databases.md: 46 of 50 requests), answered 409 contention",
        ),
    ),
    Strategy(
        "unique",
        register_unique,
        Claim.everywhere(
            "always",
            "the UNIQUE constraints refuse the second row, and ON CONFLICT DO NOTHING / "
            "INSERT IGNORE turns that into 'no row' without an exception",
        ),
    ),
)
