"""HTTP routes of the cart scenario."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from toctou.lab.deps import LabDep, RaceWindowDep
from toctou.lab.scenario import pick
from toctou.lab.scenarios.cart.ledger import read_cart
from toctou.lab.scenarios.cart.models import CartItem, CartOrder
from toctou.lab.scenarios.cart.schemas import (
    MAX_CART_ID,
    AddItemIn,
    AddItemOut,
    CartItemOut,
    CartOrderOut,
    CartOut,
    CheckoutIn,
    CheckoutOut,
)
from toctou.lab.scenarios.cart.strategies import STRATEGIES, AddItem, Checkout
from toctou.lab.schemas import ADMISSION_RESPONSES, ErrorOut, RejectedOut

__all__ = ["router"]

router = APIRouter(tags=["cart"])


@router.post(
    "/cart/{strategy}/items",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"model": ErrorOut, "description": "unknown strategy or cart"},
        409: {"model": RejectedOut, "description": "checked_out: the cart is paid already"},
        422: {"model": ErrorOut, "description": "invalid body or race window"},
        **ADMISSION_RESPONSES,
    },
)
async def add_item(
    lab: LabDep, strategy: str, body: AddItemIn, window_ms: RaceWindowDep
) -> AddItemOut:
    """Put an item into an open cart with the chosen strategy."""
    chosen = pick(STRATEGIES, strategy)
    done = await chosen.run(
        lab,
        AddItem(
            cart_id=body.cart_id,
            sku=body.sku,
            price_cents=body.price_cents,
            strategy=chosen.name,
            window_ms=window_ms,
        ),
    )
    item = done.value
    assert isinstance(item, CartItem)
    return AddItemOut(
        effect=f"item {item.id}",
        item=CartItemOut.model_validate(item, from_attributes=True),
        worker=lab.worker,
        attempts=done.attempts,
    )


@router.post(
    "/cart/{strategy}/checkout",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"model": ErrorOut, "description": "unknown strategy or cart"},
        409: {
            "model": RejectedOut,
            "description": "checked_out, cart_changed (version: items were added meanwhile) "
            "or empty_cart",
        },
        422: {"model": ErrorOut, "description": "invalid body or race window"},
        **ADMISSION_RESPONSES,
    },
)
async def checkout(
    lab: LabDep, strategy: str, body: CheckoutIn, window_ms: RaceWindowDep
) -> CheckoutOut:
    """Sum the cart, pay that amount and mark the cart paid, with the chosen strategy."""
    chosen = pick(STRATEGIES, strategy)
    done = await chosen.run(
        lab, Checkout(cart_id=body.cart_id, strategy=chosen.name, window_ms=window_ms)
    )
    order = done.value
    assert isinstance(order, CartOrder)
    return CheckoutOut(
        effect=f"order {order.id}",
        order=CartOrderOut.model_validate(order, from_attributes=True),
        worker=lab.worker,
        attempts=done.attempts,
    )


@router.get("/cart/carts/{cart_id}", responses={404: {"model": ErrorOut}, **ADMISSION_RESPONSES})
async def get_cart(lab: LabDep, cart_id: Annotated[int, Path(ge=1, le=MAX_CART_ID)]) -> CartOut:
    """The cart: its items, what they sum to, its orders, and any cents shipped unpaid."""
    async with lab.db.sessions() as session:
        return await read_cart(session, cart_id)
