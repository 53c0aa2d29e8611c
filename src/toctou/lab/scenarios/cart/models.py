"""The cart's tables: carts, the items in them, and the orders that paid for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from toctou.lab.models import Base

__all__ = ["OPEN", "PAID", "SKU_LENGTH", "Cart", "CartItem", "CartOrder"]

OPEN = "open"
PAID = "paid"
SKU_LENGTH = 64


class Cart(Base):
    """A shopping cart: open until a checkout pays for it, then what it holds ships."""

    __tablename__ = "cart_carts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(default=0)
    """Bumped by every add of the ``version`` strategy and by its payment (compare-and-swap)."""
    paid_cents: Mapped[int | None] = mapped_column(BigInteger)


class CartItem(Base):
    """One line of a cart; once the cart is paid, every line of it ships."""

    __tablename__ = "cart_items"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("cart_carts.id"), index=True)
    sku: Mapped[str] = mapped_column(String(SKU_LENGTH))
    price_cents: Mapped[int]
    strategy: Mapped[str | None] = mapped_column(String(32))
    """The strategy that added it; None for the seed's items."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CartOrder(Base):
    """One payment: the amount the checkout summed and charged."""

    __tablename__ = "cart_orders"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("cart_carts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    item_count: Mapped[int]
    strategy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
