"""The wallet's tables: accounts with integer-cent balances, and the ledger of what moved."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from toctou.lab.models import Base

__all__ = ["Account", "Transfer", "Withdrawal"]


class Account(Base):
    """One wallet; ``initial_cents`` is what the audit's ledger starts from."""

    __tablename__ = "wallet_accounts"
    # The backstop of the `constraint` strategy; it catches relative writes only (databases.md C.7).
    __table_args__ = (
        CheckConstraint("balance_cents >= 0", name="ck_wallet_accounts_balance_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(64))
    balance_cents: Mapped[int] = mapped_column(BigInteger)
    initial_cents: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(default=0)


class Withdrawal(Base):
    """Money that left an account; every 2xx answer of a withdraw route writes exactly one."""

    __tablename__ = "wallet_withdrawals"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    strategy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Transfer(Base):
    """Money moved between two accounts; every 2xx answer of a transfer route writes one."""

    __tablename__ = "wallet_transfers"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    from_account: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"), index=True)
    to_account: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    strategy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
