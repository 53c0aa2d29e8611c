"""The login's tables: accounts with their failure counter, and every password check made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from toctou.lab.models import Base

__all__ = ["USERNAME_LENGTH", "PasswordCheck", "User"]

USERNAME_LENGTH = 64
# Usernames are compared byte for byte on every backend (MariaDB's default collation would let
# "ADA" log in as "ada" there and nowhere else); schemas.USERNAME_PATTERN keeps them ASCII.
UsernameString = String(USERNAME_LENGTH).with_variant(
    mysql.VARCHAR(USERNAME_LENGTH, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)
# Naive UTC everywhere (SQLite and MariaDB keep no zone); microseconds on MariaDB too.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class User(Base):
    """An account and its rate limit: ``failures`` failed checks in the window that opened at
    ``window_started_at`` (None: no window open). ``preset_*`` is what the last reset put there,
    so the audit can replay the checks since from the same start."""

    __tablename__ = "login_users"

    username: Mapped[str] = mapped_column(UsernameString, primary_key=True)
    salt: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    preset_failures: Mapped[int] = mapped_column(default=0)
    preset_window_started_at: Mapped[datetime | None] = mapped_column(Timestamp)


class PasswordCheck(Base):
    """One password comparison, made and recorded: every 200 and 401 of a login writes one.

    No foreign key to the user: a check is a log line, and on MariaDB the key's shared lock on
    the user row would turn the vulnerable flow's two writes into deadlocks instead of the race
    this scenario is about."""

    __tablename__ = "login_checks"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(UsernameString, index=True)
    ok: Mapped[bool]
    strategy: Mapped[str] = mapped_column(String(32))
    checked_at: Mapped[datetime] = mapped_column(Timestamp)
