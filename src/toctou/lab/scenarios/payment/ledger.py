"""Seeding, resetting and auditing the payments: how many times each key was charged."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import NotFound
from toctou.lab.scenario import Audit, Check, NoScope
from toctou.lab.scenarios.payment.models import Account, Charge, IdempotencyKey
from toctou.lab.scenarios.payment.schemas import (
    ChargeOut,
    ChargeView,
    KeyCount,
    KeyOut,
    PaymentState,
    StoredAnswer,
)

__all__ = [
    "INVARIANTS",
    "SEED_ACCOUNT",
    "AccountNotFound",
    "audit",
    "charge_body",
    "read_key",
    "reset",
    "seed",
]

SEED_ACCOUNT = 1
SEED_HOLDER = "Ada Lovelace"
_LISTED = 100

INVARIANTS = {
    "one_charge_per_key": "each Idempotency-Key is charged at most once",
}


class AccountNotFound(NotFound):
    def __init__(self, account_id: int) -> None:
        super().__init__("account_not_found", f"no account with id {account_id}")


def charge_view(charge: Charge) -> ChargeView:
    return ChargeView.model_validate(charge, from_attributes=True)


def charge_body(charge: Charge) -> str:
    """The 201 body of ``charge``: what the first caller gets and every replay repeats."""
    return ChargeOut(effect=f"charge {charge.id}", charge=charge_view(charge)).model_dump_json()


async def read_key(session: AsyncSession, key: str) -> KeyOut:
    charges = await session.scalars(
        select(Charge).where(Charge.idempotency_key == key).order_by(Charge.id)
    )
    views = [charge_view(c) for c in charges]
    stored = await session.get(IdempotencyKey, key)
    return KeyOut(
        key=key,
        charges=views,
        duplicates=max(0, len(views) - 1),
        stored=StoredAnswer(status_code=stored.status_code, charge_id=stored.charge_id)
        if stored is not None
        else None,
    )


async def audit(session: AsyncSession, _scope: NoScope) -> Audit:
    """Every key charged more than once, and how many charges beyond one that makes."""
    per_key = (
        select(Charge.idempotency_key, func.count(Charge.id).label("n"))
        .group_by(Charge.idempotency_key)
        .subquery()
    )
    total = await session.scalar(select(func.count(Charge.id))) or 0
    keys = await session.scalar(select(func.count()).select_from(per_key)) or 0
    damage = await session.scalar(select(func.coalesce(func.sum(per_key.c.n - 1), 0))) or 0
    duplicated = [
        KeyCount(key=key, charges=int(n))
        for key, n in await session.execute(
            select(per_key.c.idempotency_key, per_key.c.n)
            .where(per_key.c.n > 1)
            .order_by(per_key.c.idempotency_key)
            .limit(_LISTED)
        )
    ]
    check = Check(
        "one_charge_per_key",
        [f"key {d.key!r}: {d.charges} charges ({d.charges - 1} duplicate)" for d in duplicated],
    )
    state = PaymentState(charges_total=total, keys_charged=keys, duplicated_keys=duplicated)
    return Audit(checks=[check], damage=int(damage), effects=total, state=state)


async def reset(session: AsyncSession, _scope: NoScope) -> PaymentState:
    """No keys and no charges; account 1 only."""
    await session.execute(delete(IdempotencyKey))
    await session.execute(delete(Charge))
    await session.execute(delete(Account).where(Account.id != SEED_ACCOUNT))
    await seed(session)
    return PaymentState(charges_total=0, keys_charged=0, duplicated_keys=[])


async def seed(session: AsyncSession) -> None:
    """Account 1, unless it is there already."""
    if await session.get(Account, SEED_ACCOUNT) is None:
        session.add(Account(id=SEED_ACCOUNT, holder=SEED_HOLDER))
        await session.flush()
