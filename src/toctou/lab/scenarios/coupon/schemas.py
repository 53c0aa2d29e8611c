"""The coupon's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from toctou.lab.schemas import Printable, ServedOut, StrictIn

__all__ = [
    "MAX_CODE_LENGTH",
    "AuditScope",
    "CodeOut",
    "CouponState",
    "RedeemIn",
    "RedeemOut",
    "RedemptionOut",
    "ResetScope",
]

MAX_CODE_LENGTH = 32
MAX_USES = 1_000_000


Code = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_CODE_LENGTH, examples=["WELCOME10"]),
    Printable,
]
OrderRef = Annotated[str, Field(strict=True, min_length=1, max_length=64), Printable]
MaxUses = Annotated[int, Field(strict=True, ge=1, le=MAX_USES)]


class RedeemIn(StrictIn):
    """Redeem ``code`` against an order (a reference is made up when none is given)."""

    code: Code
    order_ref: OrderRef | None = None


class ResetScope(StrictIn):
    """Put one code back to no uses with ``max_uses`` (the code is created if missing).

    Without ``code`` the whole scenario goes back to its seed: WELCOME10, one use, unused.
    """

    code: Code | None = None
    max_uses: MaxUses = 1


class AuditScope(StrictIn):
    """Narrow the audit to one code (``?scenario=coupon&code=WELCOME10``)."""

    code: Annotated[str | None, Field(min_length=1, max_length=MAX_CODE_LENGTH), Printable] = None


class RedemptionOut(BaseModel):
    id: int
    code: str
    order_ref: str
    slot: int | None = Field(description="the use number; only the `unique` strategy records it")
    strategy: str
    created_at: datetime


class RedeemOut(ServedOut):
    status: Literal["redeemed"] = "redeemed"
    effect: str = Field(description="the redemption this wrote, e.g. 'redemption 17'")
    redemption: RedemptionOut


class CodeOut(BaseModel):
    code: str
    max_uses: int
    uses: int = Field(description="the counter the strategies check and raise")
    redemptions: int = Field(description="redemption rows: what was actually given away")
    over_limit: int = Field(description="redemptions beyond max_uses")
    uncounted: int = Field(description="redemptions the uses counter lost (overwritten)")
    damage: int = Field(description="max(over_limit, uncounted): redemptions nothing accounted for")


class CouponState(BaseModel):
    codes: list[CodeOut]
    redemptions_total: int
