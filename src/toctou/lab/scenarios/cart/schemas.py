"""The cart's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from toctou.lab.scenarios.cart.models import SKU_LENGTH
from toctou.lab.schemas import ServedOut, StrictIn

__all__ = [
    "MAX_CART_ID",
    "MAX_PRICE_CENTS",
    "AddItemIn",
    "AddItemOut",
    "CartAudit",
    "CartItemOut",
    "CartOrderOut",
    "CartOut",
    "CartState",
    "CheckoutIn",
    "CheckoutOut",
]

MAX_CART_ID = 2**31 - 1
MAX_PRICE_CENTS = 100_000_000

CartId = Annotated[int, Field(strict=True, ge=1, le=MAX_CART_ID)]


class AddItemIn(StrictIn):
    """Put one item into an open cart."""

    cart_id: CartId
    sku: Annotated[
        str,
        Field(
            strict=True,
            min_length=1,
            max_length=SKU_LENGTH,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="1-64 letters, digits, '_', '.' or '-'",
        ),
    ]
    price_cents: Annotated[int, Field(strict=True, ge=1, le=MAX_PRICE_CENTS)]


class CheckoutIn(StrictIn):
    """Pay for everything in the cart."""

    cart_id: CartId


class CartItemOut(BaseModel):
    id: int
    cart_id: int
    sku: str
    price_cents: int
    strategy: str | None = Field(description="the strategy that added it; null for seed items")
    created_at: datetime


class CartOrderOut(BaseModel):
    id: int
    cart_id: int
    amount_cents: int = Field(description="what the checkout charged")
    item_count: int = Field(description="the items it summed")
    strategy: str
    created_at: datetime


class AddItemOut(ServedOut):
    status: Literal["added"] = "added"
    effect: str = Field(description="the item this request wrote, e.g. 'item 17'")
    item: CartItemOut


class CheckoutOut(ServedOut):
    status: Literal["paid"] = "paid"
    effect: str = Field(description="the order this checkout wrote, e.g. 'order 17'")
    order: CartOrderOut


class CartAudit(BaseModel):
    id: int
    status: str = Field(description="open or paid")
    item_count: int
    total_cents: int = Field(description="the sum of its items: what ships once it is paid")
    paid_cents: int = Field(description="the sum its orders charged")
    order_count: int
    unpaid_cents: int = Field(description="shipped but not paid (0 while the cart is open)")
    overpaid_cents: int = Field(description="paid but not shipped")


class CartOut(CartAudit):
    version: int
    items: list[CartItemOut]
    orders: list[CartOrderOut]


class CartState(BaseModel):
    carts: list[CartAudit]
    items_added: int = Field(description="items added since the reset (the seed's not counted)")
    orders_total: int
