"""Reading, auditing and resetting the sign-ups: which names and emails are held twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.scenario import Audit, Check, NoScope
from toctou.lab.scenarios.signup.models import TABLES, UniqueUser, User
from toctou.lab.scenarios.signup.schemas import SignupState, TableState

__all__ = ["INVARIANTS", "audit", "reset", "seed"]

INVARIANTS = {
    "unique_usernames": "no two rows of a table hold the same username",
    "unique_emails": "no two rows of a table hold the same email",
}
_LISTED = 20  # violations named one by one; the rest are counted

Column = Literal["username", "email"]


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    username: str
    email: str


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    rows: list[_Row]  # oldest first

    @property
    def duplicate_rows(self) -> int:
        """Rows whose username or email an earlier row already holds."""
        names: set[str] = set()
        emails: set[str] = set()
        extra = 0
        for row in self.rows:
            extra += row.username in names or row.email in emails
            names.add(row.username)
            emails.add(row.email)
        return extra

    def held_twice(self, column: Column) -> dict[str, list[int]]:
        """Each value of ``column`` that more than one row holds, with those rows' ids."""
        counts = Counter(getattr(row, column) for row in self.rows)
        return {
            value: [row.id for row in self.rows if getattr(row, column) == value]
            for value, count in counts.items()
            if count > 1
        }

    def state(self) -> TableState:
        held = [*self.held_twice("username"), *self.held_twice("email")]
        return TableState(
            rows=len(self.rows), duplicate_rows=self.duplicate_rows, duplicated=held[:_LISTED]
        )


async def _read(session: AsyncSession) -> list[_Table]:
    tables = []
    for model in TABLES:
        rows = await session.execute(
            select(model.id, model.username, model.email).order_by(model.id)
        )
        tables.append(_Table(model.__tablename__, [_Row(int(i), u, e) for i, u, e in rows]))
    return tables


def _violations(tables: list[_Table], column: Column) -> list[str]:
    found = [
        f"{table.name}: {column} {value!r} held by {len(ids)} rows (ids {', '.join(map(str, ids))})"
        for table in tables
        for value, ids in table.held_twice(column).items()
    ]
    if len(found) > _LISTED:
        found = [*found[:_LISTED], f"... and {len(found) - _LISTED} more"]
    return found


async def audit(session: AsyncSession, _scope: NoScope) -> Audit:
    """Duplicate usernames and emails in both tables; every row counts as an effect."""
    tables = await _read(session)
    plain, unique = tables
    return Audit(
        checks=[
            Check("unique_usernames", _violations(tables, "username")),
            Check("unique_emails", _violations(tables, "email")),
        ],
        damage=sum(t.duplicate_rows for t in tables),
        effects=sum(len(t.rows) for t in tables),
        state=SignupState(signup_users=plain.state(), signup_unique_users=unique.state()),
    )


async def reset(session: AsyncSession, _scope: NoScope) -> SignupState:
    """No accounts at all, in either table."""
    await session.execute(delete(User))
    await session.execute(delete(UniqueUser))
    empty = TableState(rows=0, duplicate_rows=0, duplicated=[])
    return SignupState(signup_users=empty, signup_unique_users=empty)


async def seed(_session: AsyncSession) -> None:
    """Nothing to seed: the sign-up starts with no accounts."""
