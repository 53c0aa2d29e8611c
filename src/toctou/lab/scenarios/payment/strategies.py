"""Every way to take a retried or duplicated charge: no key handling, a check that races, and the
key row that holds.

Each strategy does the same business action: charge an account once per ``Idempotency-Key`` and
give every caller with that key the first caller's answer. ``pause(window_ms)`` is the race window,
after the key was checked or claimed and before the charge is written and committed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.db import is_unique_violation
from toctou.lab.errors import Invalid, Rejected
from toctou.lab.runtime import Lab
from toctou.lab.scenario import Claim, Strategy, strategies
from toctou.lab.scenarios.payment.ledger import AccountNotFound, charge_body
from toctou.lab.scenarios.payment.models import Account, Charge, IdempotencyKey
from toctou.lab.transaction import pause, with_retries

__all__ = ["STRATEGIES", "Answer", "Payment"]


@dataclass(frozen=True, slots=True)
class Payment:
    key: str
    account_id: int
    amount_cents: int
    strategy: str
    window_ms: float = 0.0

    @property
    def fingerprint(self) -> str:
        """What makes two requests with one key the same request: account and amount."""
        return hashlib.sha256(f"{self.account_id}:{self.amount_cents}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to give: the first caller's status and JSON body, or a replay of them."""

    status_code: int
    body: str
    replayed: bool = False


def _key_reused(payment: Payment) -> Invalid:
    return Invalid(
        "key_reused", f"Idempotency-Key {payment.key!r} was used with another account or amount"
    )


async def _charge(session: AsyncSession, payment: Payment) -> Charge:
    """Check the account exists, open the race window, write the charge."""
    if await session.get(Account, payment.account_id) is None:
        raise AccountNotFound(payment.account_id)
    await pause(payment.window_ms)
    charge = Charge(
        account_id=payment.account_id,
        amount_cents=payment.amount_cents,
        idempotency_key=payment.key,
        strategy=payment.strategy,
        created_at=datetime.now(UTC),
    )
    session.add(charge)
    await session.flush()
    return charge


async def charge_vulnerable(lab: Lab, payment: Payment) -> Answer:
    """No idempotency at all: every request charges; the key is written down, never checked."""
    async with lab.db.sessions() as session, session.begin():
        return Answer(201, charge_body(await _charge(session, payment)))


async def charge_check_then_insert(lab: Lab, payment: Payment) -> Answer:
    """SELECT a charge with this key, replay it if found, else charge: no constraint behind it."""
    async with lab.db.sessions() as session, session.begin():
        earlier = await session.scalar(
            select(Charge).where(Charge.idempotency_key == payment.key).order_by(Charge.id).limit(1)
        )
        if earlier is not None:
            if (earlier.account_id, earlier.amount_cents) != (
                payment.account_id,
                payment.amount_cents,
            ):
                raise _key_reused(payment)
            return Answer(201, charge_body(earlier), replayed=True)
        return Answer(201, charge_body(await _charge(session, payment)))


async def charge_key_row(lab: Lab, payment: Payment) -> Answer:
    """An idempotency-key row (PRIMARY KEY) inserted first, in the charge's own transaction."""

    async def attempt() -> Answer | None:
        try:
            async with lab.db.sessions() as session, session.begin():
                key = IdempotencyKey(
                    idempotency_key=payment.key,
                    fingerprint=payment.fingerprint,
                    created_at=datetime.now(UTC),
                )
                session.add(key)
                await session.flush()  # a second caller waits here until the first commits
                charge = await _charge(session, payment)
                key.status_code, key.response_body = 201, charge_body(charge)
                key.charge_id = charge.id
                return Answer(key.status_code, key.response_body)
        except DBAPIError as exc:
            if is_unique_violation(exc):
                return None  # the first caller committed: replay its answer
            raise

    # Retried: when a first caller rolls back (a 404), InnoDB callers queued on its key hold
    # shared locks on it and may deadlock upgrading them (MySQL manual, "An InnoDB Deadlock
    # Example" with INSERT); not seen in the lab's tests, where the 404 comes at once.
    first = (await with_retries(lab, attempt)).value
    if first is not None:
        return first
    async with lab.db.sessions() as session:
        stored = await session.get(IdempotencyKey, payment.key)
    if stored is not None and stored.fingerprint != payment.fingerprint:
        raise _key_reused(payment)
    if stored is None or stored.status_code is None or stored.response_body is None:
        # Not seen in practice: the answer is stored before the commit that makes the row
        # visible. Only a reset between the violation and this read can get here.
        raise Rejected("in_progress", f"the request with key {payment.key!r} has no answer yet")
    return Answer(stored.status_code, stored.response_body, replayed=True)


STRATEGIES = strategies(
    Strategy(
        "vulnerable",
        charge_vulnerable,
        Claim.everywhere("never", "nothing looks at the key: every copy of the request charges"),
    ),
    Strategy(
        "check-then-insert",
        charge_check_then_insert,
        Claim.everywhere(
            "never",
            "every copy SELECTs before any has committed its charge, so all find none and all "
            "charge (SQLite too: its SELECT runs outside the write transaction)",
        ),
    ),
    Strategy(
        "key-row",
        charge_key_row,
        Claim.everywhere(
            "always",
            "the PRIMARY KEY admits one key row: the other copies wait on it until the first "
            "commits, then get a unique violation and replay its stored answer (SQLite: the "
            "INSERT takes the write lock and the others wait on the busy timeout)",
        ),
    ),
)
