"""The payment's request and response bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from toctou.lab.scenarios.payment.models import KEY_LENGTH
from toctou.lab.schemas import StrictIn

__all__ = [
    "KEY_PATTERN",
    "MAX_ACCOUNT_ID",
    "MAX_AMOUNT_CENTS",
    "ChargeIn",
    "ChargeOut",
    "ChargeView",
    "KeyCount",
    "KeyOut",
    "PaymentState",
    "StoredAnswer",
]

MAX_ACCOUNT_ID = 2**31 - 1
MAX_AMOUNT_CENTS = 100_000_000
KEY_PATTERN = r"^[!-~]+$"  # visible ASCII, 1 to KEY_LENGTH characters: no spaces, no controls
KeyText = Annotated[str, Field(min_length=1, max_length=KEY_LENGTH, pattern=KEY_PATTERN)]


class ChargeIn(StrictIn):
    """A charge: which account, how many cents."""

    account_id: Annotated[int, Field(strict=True, ge=1, le=MAX_ACCOUNT_ID)] = 1
    amount_cents: Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT_CENTS)]


class ChargeView(BaseModel):
    id: int
    account_id: int
    amount_cents: int
    idempotency_key: str
    strategy: str


class ChargeOut(BaseModel):
    """A charge's answer; a replay repeats the first answer byte for byte."""

    status: Literal["charged"] = "charged"
    effect: str = Field(description="the charge this request wrote, e.g. 'charge 17'")
    charge: ChargeView


class StoredAnswer(BaseModel):
    status_code: int | None
    charge_id: int | None


class KeyOut(BaseModel):
    key: str
    charges: list[ChargeView] = Field(description="every charge made with this key, oldest first")
    duplicates: int = Field(description="charges beyond the first")
    stored: StoredAnswer | None = Field(
        description="the key-row strategy's stored answer for this key, if it has one"
    )


class KeyCount(BaseModel):
    key: str
    charges: int


class PaymentState(BaseModel):
    charges_total: int
    keys_charged: int = Field(description="distinct keys with at least one charge")
    duplicated_keys: list[KeyCount] = Field(
        description="keys charged more than once (the first 100, by key)"
    )
