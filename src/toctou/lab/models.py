"""The declarative base every scenario's tables are declared on (their models live with them)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase

__all__ = ["Base", "text_column"]


class Base(DeclarativeBase):
    pass


def text_column(length: int) -> String:
    """``VARCHAR(length)`` compared byte for byte on every backend: MariaDB's default collation
    ignores case, accents and trailing spaces, so 'Ada', 'ada ' and 'adà' would be one name there
    and three elsewhere. Use it for every column a uniqueness check or a look-up compares."""
    return String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_nopad_bin"), "mysql", "mariadb"
    )
