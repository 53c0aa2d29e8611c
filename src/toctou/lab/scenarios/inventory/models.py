"""The inventory's tables: items with their stock, and the orders that claimed it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from toctou.lab.models import Base

__all__ = ["Item", "Order"]


class Item(Base):
    """A product with limited stock; ``initial_stock`` is what the audit checks against."""

    __tablename__ = "items"
    # The backstop of the `constraint` strategy; it catches relative writes only (databases.md C.7).
    __table_args__ = (CheckConstraint("stock >= 0", name="ck_items_stock_nonnegative"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(120))
    stock: Mapped[int]
    initial_stock: Mapped[int]
    version: Mapped[int] = mapped_column(default=0)


class Order(Base):
    """One successful purchase; every 2xx answer of a purchase route writes exactly one."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    quantity: Mapped[int]
    buyer: Mapped[str | None] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
