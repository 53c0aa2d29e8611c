"""Reading, auditing and resetting the wallet: what a race did to the money."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import NotFound
from toctou.lab.scenario import Audit, Check
from toctou.lab.scenarios.wallet.models import Account, Transfer, Withdrawal
from toctou.lab.scenarios.wallet.schemas import (
    AccountAudit,
    AccountOut,
    AuditScope,
    ResetScope,
    WalletState,
)

__all__ = [
    "INVARIANTS",
    "SEED_ACCOUNTS",
    "SEED_BALANCE_CENTS",
    "AccountNotFound",
    "AccountView",
    "audit",
    "read_account",
    "reset",
    "seed",
]

SEED_ACCOUNTS = 2
SEED_BALANCE_CENTS = 1000

INVARIANTS = {
    "non_negative_balance": "balance_cents >= 0 for every account",
    "conservation": "balance == initial + transfers in - transfers out - withdrawals "
    "(a difference is a lost update: money created or lost)",
    "no_overdraft": "withdrawals + transfers out <= initial + transfers in (no double spend)",
}


class AccountNotFound(NotFound):
    def __init__(self, account_id: int) -> None:
        super().__init__("account_not_found", f"no account with id {account_id}")
        self.account_id = account_id


def owner_name(account_id: int) -> str:
    return f"account {account_id}"


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    owner: str
    balance: int
    initial: int
    withdrawn: int
    transferred_in: int
    transferred_out: int

    @property
    def expected(self) -> int:
        return self.initial + self.transferred_in - self.transferred_out - self.withdrawn

    @property
    def overdrawn(self) -> int:
        return max(0, -self.expected)

    @property
    def lost_update(self) -> int:
        return self.balance - self.expected

    @property
    def damage(self) -> int:
        """Cents overdrawn, or created or lost by an overwritten write (or below zero)."""
        return max(abs(self.lost_update), self.overdrawn, -self.balance)

    def out(self) -> AccountOut:
        return AccountOut(**self._fields())

    def audited(self) -> AccountAudit:
        return AccountAudit(**self._fields(), lost_update_cents=self.lost_update)

    def _fields(self) -> dict[str, int | str]:
        return {
            "id": self.id,
            "owner": self.owner,
            "balance_cents": self.balance,
            "initial_cents": self.initial,
            "withdrawn_cents": self.withdrawn,
            "transferred_in_cents": self.transferred_in,
            "transferred_out_cents": self.transferred_out,
            "expected_cents": self.expected,
            "overdrawn_cents": self.overdrawn,
            "damage": self.damage,
        }


async def read_accounts(session: AsyncSession, account_id: int | None = None) -> list[AccountView]:
    withdrawn = (
        select(Withdrawal.account_id.label("id"), func.sum(Withdrawal.amount_cents).label("cents"))
        .group_by(Withdrawal.account_id)
        .subquery()
    )
    sent = (
        select(Transfer.from_account.label("id"), func.sum(Transfer.amount_cents).label("cents"))
        .group_by(Transfer.from_account)
        .subquery()
    )
    received = (
        select(Transfer.to_account.label("id"), func.sum(Transfer.amount_cents).label("cents"))
        .group_by(Transfer.to_account)
        .subquery()
    )
    query = (
        select(
            Account.id,
            Account.owner,
            Account.balance_cents,
            Account.initial_cents,
            func.coalesce(withdrawn.c.cents, 0),
            func.coalesce(received.c.cents, 0),
            func.coalesce(sent.c.cents, 0),
        )
        .outerjoin(withdrawn, withdrawn.c.id == Account.id)
        .outerjoin(received, received.c.id == Account.id)
        .outerjoin(sent, sent.c.id == Account.id)
        .order_by(Account.id)
    )
    if account_id is not None:
        query = query.where(Account.id == account_id)
    rows = await session.execute(query)
    # SUM() comes back as Decimal on PostgreSQL and MariaDB, hence int().
    return [
        AccountView(int(id_), owner, int(balance), int(initial), int(out), int(in_), int(sent_))
        for id_, owner, balance, initial, out, in_, sent_ in rows
    ]


async def read_account(session: AsyncSession, account_id: int) -> AccountView:
    views = await read_accounts(session, account_id)
    if not views:
        raise AccountNotFound(account_id)
    return views[0]


async def audit(session: AsyncSession, scope: AuditScope) -> Audit:
    """Check every invariant of the wallet and say which accounts break it."""
    account_id = scope.account_id
    withdrawals = select(func.count(Withdrawal.id))
    transfers = select(func.count(Transfer.id))
    if account_id is not None:
        accounts = [await read_account(session, account_id)]
        withdrawals = withdrawals.where(Withdrawal.account_id == account_id)
        transfers = transfers.where(
            or_(Transfer.from_account == account_id, Transfer.to_account == account_id)
        )
    else:
        accounts = await read_accounts(session)
    withdrawals_total = await session.scalar(withdrawals) or 0
    transfers_total = await session.scalar(transfers) or 0
    checks = [
        Check(
            "non_negative_balance",
            [f"account {a.id}: balance {a.balance}" for a in accounts if a.balance < 0],
        ),
        Check(
            "conservation",
            [
                f"account {a.id}: balance {a.balance} != {a.initial} + {a.transferred_in} - "
                f"{a.transferred_out} - {a.withdrawn} = {a.expected} "
                f"({abs(a.lost_update)} cents {'created' if a.lost_update > 0 else 'lost'})"
                for a in accounts
                if a.lost_update
            ],
        ),
        Check(
            "no_overdraft",
            [
                f"account {a.id}: spent {a.withdrawn + a.transferred_out} of "
                f"{a.initial + a.transferred_in} ({a.overdrawn} cents overdrawn)"
                for a in accounts
                if a.overdrawn
            ],
        ),
    ]
    state = WalletState(
        accounts=[a.audited() for a in accounts],
        withdrawals_total=withdrawals_total,
        transfers_total=transfers_total,
    )
    return Audit(
        checks=checks,
        damage=sum(a.damage for a in accounts),
        effects=withdrawals_total + transfers_total,
        state=state,
    )


async def reset(session: AsyncSession, scope: ResetScope) -> WalletState:
    """Accounts 1..N at one balance, no withdrawals or transfers, no other accounts."""
    await session.execute(delete(Withdrawal))
    await session.execute(delete(Transfer))
    await session.execute(delete(Account).where(Account.id > scope.accounts))
    for account_id in range(1, scope.accounts + 1):
        account = await session.get(Account, account_id)
        if account is None:
            session.add(_new_account(account_id, scope.balance_cents))
        else:
            account.balance_cents = account.initial_cents = scope.balance_cents
            account.version = 0
    await session.flush()
    return WalletState(
        accounts=[a.audited() for a in await read_accounts(session)],
        withdrawals_total=0,
        transfers_total=0,
    )


def _new_account(account_id: int, balance: int) -> Account:
    return Account(
        id=account_id,
        owner=owner_name(account_id),
        balance_cents=balance,
        initial_cents=balance,
        version=0,
    )


async def seed(session: AsyncSession) -> None:
    """Accounts 1 and 2 with 1000 cents each, unless they are there already."""
    for account_id in range(1, SEED_ACCOUNTS + 1):
        if await session.get(Account, account_id) is None:
            session.add(_new_account(account_id, SEED_BALANCE_CENTS))
    await session.flush()
