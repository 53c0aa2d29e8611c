"""The payment's tables: accounts, the charges made to them, and the idempotency keys of the fix."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from toctou.lab.models import Base

__all__ = ["KEY_LENGTH", "Account", "Charge", "IdempotencyKey"]

KEY_LENGTH = 255
# Keys are visible ASCII (schemas.KEY_PATTERN) and compared byte for byte on every backend:
# MariaDB's default collation would make "abc" and "ABC" one key there and two elsewhere.
KeyString = String(KEY_LENGTH).with_variant(
    mysql.VARCHAR(KEY_LENGTH, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)


class Account(Base):
    """Who is charged; the seed has account 1. A card account: no balance, nothing to run out."""

    __tablename__ = "payment_accounts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(120))


class Charge(Base):
    """One charge to an account. The key it was asked with is written down, and nothing makes
    it unique here: that is what ``check-then-insert`` relies on, and why it fails."""

    __tablename__ = "payment_charges"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("payment_accounts.id"), index=True)
    amount_cents: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(KeyString, index=True)
    strategy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    """The ``key-row`` fix: one row per key (PRIMARY KEY), inserted before the charge in the
    charge's own transaction, holding the answer to replay (filled in before the commit)."""

    __tablename__ = "payment_idempotency_keys"

    idempotency_key: Mapped[str] = mapped_column(KeyString, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    """sha256 of the request's account and amount: the same key with another body is refused."""
    status_code: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    charge_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
