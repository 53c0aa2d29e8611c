"""The sign-up's tables: one without a UNIQUE constraint (the bug), one with it (the fix)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from toctou.lab.models import Base, text_column

__all__ = ["EMAIL_LENGTH", "USERNAME_LENGTH", "Account", "UniqueUser", "User"]

USERNAME_LENGTH = 64
EMAIL_LENGTH = 254


class Account:
    """The columns both tables share."""

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(text_column(USERNAME_LENGTH))
    email: Mapped[str] = mapped_column(text_column(EMAIL_LENGTH))
    strategy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class User(Account, Base):
    """Accounts of the check-then-insert strategies: indexed, but nothing makes a name unique.

    The indexes are what a real table has for the look-up; on MariaDB they are also where a
    locking read takes its gap locks (databases.md C.9).
    """

    __tablename__ = "signup_users"
    __table_args__ = (
        Index("ix_signup_users_username", "username"),
        Index("ix_signup_users_email", "email"),
    )


class UniqueUser(Account, Base):
    """Accounts of the ``unique`` strategy: the database itself refuses a second name or email."""

    __tablename__ = "signup_unique_users"
    __table_args__ = (
        UniqueConstraint("username", name="uq_signup_unique_users_username"),
        UniqueConstraint("email", name="uq_signup_unique_users_email"),
    )


TABLES: tuple[type[User] | type[UniqueUser], ...] = (User, UniqueUser)
