"""The wallet's request and response bodies. Money is integer cents, never a float."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from toctou.lab.schemas import ServedOut, StrictIn

__all__ = [
    "MAX_ACCOUNTS",
    "MAX_ACCOUNT_ID",
    "MAX_AMOUNT_CENTS",
    "MAX_BALANCE_CENTS",
    "AccountAudit",
    "AccountOut",
    "AuditScope",
    "ResetScope",
    "TransferIn",
    "TransferOut",
    "TransferRecord",
    "WalletState",
    "WithdrawIn",
    "WithdrawOut",
    "WithdrawalRecord",
]

MAX_ACCOUNT_ID = 2**31 - 1
MAX_ACCOUNTS = 100
MAX_AMOUNT_CENTS = 100_000_000  # one million in cents per request
MAX_BALANCE_CENTS = 1_000_000_000

# strict=True: "1000", 10.0 and true are not amounts; a client that sends them has a bug.
AccountId = Annotated[int, Field(strict=True, ge=1, le=MAX_ACCOUNT_ID)]
AmountCents = Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT_CENTS)]


class WithdrawIn(StrictIn):
    """Take ``amount_cents`` out of one account."""

    account_id: AccountId
    amount_cents: AmountCents


class TransferIn(StrictIn):
    """Move ``amount_cents`` from one account to another (never the same one)."""

    from_account: AccountId
    to_account: AccountId
    amount_cents: AmountCents

    @field_validator("to_account")
    @classmethod
    def _not_to_itself(cls, to_account: int, info: ValidationInfo) -> int:
        if info.data.get("from_account") == to_account:
            raise ValueError("must differ from from_account: a transfer to itself moves nothing")
        return to_account


class ResetScope(StrictIn):
    """Accounts 1..``accounts`` at ``balance_cents`` each, every other account and every
    withdrawal and transfer deleted. The defaults are the seed: accounts 1 and 2, 1000 each."""

    accounts: Annotated[int, Field(strict=True, ge=1, le=MAX_ACCOUNTS)] = 2
    balance_cents: Annotated[int, Field(strict=True, ge=0, le=MAX_BALANCE_CENTS)] = 1000


class AuditScope(StrictIn):
    """Narrow the audit to one account (``?scenario=wallet&account_id=2``)."""

    account_id: Annotated[int | None, Field(ge=1, le=MAX_ACCOUNT_ID)] = None


class WithdrawalRecord(BaseModel):
    id: int
    account_id: int
    amount_cents: int
    strategy: str
    created_at: datetime


class TransferRecord(BaseModel):
    id: int
    from_account: int
    to_account: int
    amount_cents: int
    strategy: str
    created_at: datetime


class WithdrawOut(ServedOut):
    status: Literal["withdrawn"] = "withdrawn"
    effect: str = Field(description="the withdrawal this request wrote, e.g. 'withdrawal 17'")
    withdrawal: WithdrawalRecord


class TransferOut(ServedOut):
    status: Literal["transferred"] = "transferred"
    effect: str = Field(description="the transfer this request wrote, e.g. 'transfer 17'")
    transfer: TransferRecord


class AccountOut(BaseModel):
    id: int
    owner: str
    balance_cents: int
    initial_cents: int
    withdrawn_cents: int = Field(description="the sum of the account's withdrawals")
    transferred_in_cents: int
    transferred_out_cents: int
    expected_cents: int = Field(
        description="what the ledger says the balance is: initial + in - out - withdrawn"
    )
    overdrawn_cents: int = Field(description="cents spent beyond what the account ever had")
    damage: int = Field(
        description="cents overdrawn, or created or lost by an overwritten write; 0 if none"
    )


class AccountAudit(AccountOut):
    lost_update_cents: int = Field(
        description="balance - expected: > 0 money created, < 0 money lost (overwritten writes)"
    )


class WalletState(BaseModel):
    accounts: list[AccountAudit]
    withdrawals_total: int
    transfers_total: int
