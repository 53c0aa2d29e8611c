"""Every way to limit password guessing: a limit read apart from its count, and two that hold.

Each strategy does the same business action: refuse (429) while the account's window has
``LIMIT`` failures, else compare the password, record the check, and count it if it failed.
``pause(window_ms)`` is the race window, after the limit was checked or a slot claimed and before
the commit that counts the failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import Rejected
from toctou.lab.runtime import Lab
from toctou.lab.scenario import Claim, Strategy, strategies
from toctou.lab.scenarios.login.ledger import UserNotFound
from toctou.lab.scenarios.login.models import PasswordCheck, User
from toctou.lab.scenarios.login.policy import (
    LIMIT,
    WINDOW,
    password_matches,
    retry_after_s,
    utcnow,
    window_open,
)
from toctou.lab.transaction import for_update, pause

__all__ = ["STRATEGIES", "Login", "Verified"]


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str
    strategy: str
    window_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Verified:
    """The right password: the check that said so."""

    check_id: int
    username: str


def _rate_limited(started_at: datetime | None, now: datetime) -> Rejected:
    wait = retry_after_s(started_at, now)
    return Rejected(
        "rate_limited",
        f"{LIMIT} failed passwords in this window; no password is checked for {wait} s",
        status_code=429,
        headers={"Retry-After": str(wait)},
        retry_after_s=wait,
    )


async def _record(session: AsyncSession, login: Login, ok: bool, now: datetime) -> PasswordCheck:
    check = PasswordCheck(username=login.username, ok=ok, strategy=login.strategy, checked_at=now)
    session.add(check)
    await session.flush()
    return check


def _outcome(check: PasswordCheck) -> Verified:
    """The committed check as an answer: the right password, or a 401 naming the check."""
    if not check.ok:
        raise Rejected(
            "wrong_password",
            "wrong password",
            status_code=401,
            effect=f"check {check.id}",
        )
    return Verified(check.id, check.username)


async def _read_check_compare(session: AsyncSession, login: Login, *, lock: bool) -> PasswordCheck:
    query = select(User).where(User.username == login.username)
    user = (
        await session.execute(for_update(query, session) if lock else query)
    ).scalar_one_or_none()
    if user is None:
        raise UserNotFound(login.username)
    now = utcnow()
    if not window_open(user.window_started_at, now):
        user.failures, user.window_started_at = 0, now
    if user.failures >= LIMIT:
        raise _rate_limited(user.window_started_at, now)
    await pause(login.window_ms)
    ok = password_matches(login.password, user.salt, user.password_hash)
    if not ok:
        user.failures = user.failures + 1  # the ORM writes the number computed here
    return await _record(session, login, ok, now)


async def login_vulnerable(lab: Lab, login: Login) -> Verified:
    """Read the failure count, check it, compare the password, then count: all apart."""
    async with lab.db.sessions() as session, session.begin():
        check = await _read_check_compare(session, login, lock=False)
    return _outcome(check)


async def login_atomic(lab: Lab, login: Login) -> Verified:
    """Claim a slot first (UPDATE ... failures + 1 WHERE failures < 5, rowcount), then compare."""
    now = utcnow()
    async with lab.db.sessions() as session, session.begin():
        await session.execute(  # the window is over (or none is open): open a new one
            update(User)
            .where(
                User.username == login.username,
                or_(User.window_started_at.is_(None), User.window_started_at <= now - WINDOW),
            )
            .values(failures=0, window_started_at=now)
            .execution_options(synchronize_session=False)
        )
        claimed = await session.execute(
            update(User)
            .where(User.username == login.username, User.failures < LIMIT)
            .values(failures=User.failures + 1)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            user = await session.get(User, login.username)
            if user is None:
                raise UserNotFound(login.username)
            raise _rate_limited(user.window_started_at, now)
        await pause(login.window_ms)
        user = await session.get(User, login.username)
        assert user is not None  # we hold its row
        ok = password_matches(login.password, user.salt, user.password_hash)
        if ok:  # the slot was for a failure that did not happen: give it back
            await session.execute(
                update(User)
                .where(User.username == login.username)
                .values(failures=User.failures - 1)
                .execution_options(synchronize_session=False)
            )
        check = await _record(session, login, ok, now)
    return _outcome(check)


async def login_lock(lab: Lab, login: Login) -> Verified:
    """Pessimistic lock: SELECT ... FOR UPDATE on the account (SQLite: BEGIN IMMEDIATE)."""
    async with lab.db.locking_sessions() as session, session.begin():
        check = await _read_check_compare(session, login, lock=True)
    return _outcome(check)


STRATEGIES = strategies(
    Strategy(
        "vulnerable",
        login_vulnerable,
        Claim.everywhere(
            "never",
            "every guess in a burst reads the count before any has written its failure, so all "
            "pass the check and all are compared (and the ORM's absolute writes lose counts)",
        ),
    ),
    Strategy(
        "atomic",
        login_atomic,
        Claim.everywhere(
            "always",
            "the database re-checks failures < 5 as it increments: only 5 guesses get a slot",
        ),
    ),
    Strategy(
        "lock",
        login_lock,
        Claim.everywhere(
            "always",
            "guesses queue on the account's row lock, each reading the count the last one wrote "
            "(SQLite: on the write lock of BEGIN IMMEDIATE)",
        ),
    ),
)
