"""Seeding, resetting and auditing the login: replaying every check against the rate limit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import NotFound
from toctou.lab.scenario import Audit, Check, NoScope
from toctou.lab.scenarios.login.models import PasswordCheck, User
from toctou.lab.scenarios.login.policy import (
    LIMIT,
    SEED_PASSWORD,
    SEED_USERNAME,
    hash_password,
    new_salt,
    utcnow,
    window_open,
)
from toctou.lab.scenarios.login.schemas import LoginState, LoginUserOut, ResetScope

__all__ = ["INVARIANTS", "UserNotFound", "audit", "over_limit", "read_user", "reset", "seed"]

INVARIANTS = {
    "checks_within_limit": f"no password is checked once {LIMIT} checks in the account's "
    "window have failed",
}


class UserNotFound(NotFound):
    def __init__(self, username: str) -> None:
        super().__init__("user_not_found", f"no user called {username!r}")


def over_limit(user: User, checks: Iterable[tuple[bool, datetime]]) -> int:
    """Replay ``checks`` (ok, when; in the order they were made) against the limit, from what the
    reset left: how many were made although their window already had ``LIMIT`` failures."""
    failures, started = user.preset_failures, user.preset_window_started_at
    over = 0
    for ok, at in checks:
        if not window_open(started, at):
            failures, started = 0, at
        if failures >= LIMIT:
            over += 1
        if not ok:
            failures += 1
    return over


def _user_out(user: User, checks: list[tuple[bool, datetime]]) -> LoginUserOut:
    return LoginUserOut(
        username=user.username,
        failures=user.failures if window_open(user.window_started_at, utcnow()) else 0,
        window_started_at=user.window_started_at,
        checks=len(checks),
        failed_checks=sum(not ok for ok, _ in checks),
        over_limit=over_limit(user, checks),
    )


async def _checks(
    session: AsyncSession, username: str | None = None
) -> dict[str, list[tuple[bool, datetime]]]:
    query = select(PasswordCheck.username, PasswordCheck.ok, PasswordCheck.checked_at).order_by(
        PasswordCheck.id
    )
    if username is not None:
        query = query.where(PasswordCheck.username == username)
    found: dict[str, list[tuple[bool, datetime]]] = {}
    for name, ok, at in await session.execute(query):
        found.setdefault(name, []).append((bool(ok), at))
    return found


async def read_user(session: AsyncSession, username: str) -> LoginUserOut:
    user = await session.get(User, username)
    if user is None:
        raise UserNotFound(username)
    return _user_out(user, (await _checks(session, username)).get(username, []))


async def audit(session: AsyncSession, _scope: NoScope) -> Audit:
    """Every account's checks since the reset, replayed: those made over the limit."""
    users = (await session.scalars(select(User).order_by(User.username))).all()
    checks = await _checks(session)
    views = [_user_out(u, checks.get(u.username, [])) for u in users]
    check = Check(
        "checks_within_limit",
        [
            f"user {v.username!r}: {v.over_limit} of {v.checks} checks made over the limit "
            f"({v.failed_checks} failed)"
            for v in views
            if v.over_limit
        ],
    )
    total = sum(len(c) for c in checks.values())
    return Audit(
        checks=[check],
        damage=sum(v.over_limit for v in views),
        effects=total,
        state=LoginState(users=views, checks_total=total),
    )


async def reset(session: AsyncSession, scope: ResetScope) -> LoginState:
    """No checks; the account's counter at ``failures`` in a window ``window_age_s`` old."""
    await session.execute(delete(PasswordCheck))
    await session.execute(delete(User).where(User.username != SEED_USERNAME))
    await seed(session)
    user = await session.get(User, SEED_USERNAME)
    assert user is not None
    started = utcnow() - timedelta(seconds=scope.window_age_s) if scope.failures else None
    user.failures = user.preset_failures = scope.failures
    user.window_started_at = user.preset_window_started_at = started
    await session.flush()
    return LoginState(users=[_user_out(user, [])], checks_total=0)


async def seed(session: AsyncSession) -> None:
    """The user ``ada`` with the published password, unless she is there already."""
    if await session.get(User, SEED_USERNAME) is None:
        salt = new_salt()
        session.add(
            User(
                username=SEED_USERNAME,
                salt=salt,
                password_hash=hash_password(SEED_PASSWORD, salt),
                failures=0,
                window_started_at=None,
                preset_failures=0,
                preset_window_started_at=None,
            )
        )
        await session.flush()
