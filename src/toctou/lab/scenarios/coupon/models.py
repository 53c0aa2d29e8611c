"""The coupon's tables: codes with a use limit, and the redemptions that used them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from toctou.lab.models import Base, text_column

__all__ = ["CouponCode", "Redemption"]


class CouponCode(Base):
    """A code that may be redeemed ``max_uses`` times; ``uses`` is the counter strategies check."""

    __tablename__ = "coupon_codes"

    code: Mapped[str] = mapped_column(text_column(32), primary_key=True)
    max_uses: Mapped[int]
    uses: Mapped[int]


class Redemption(Base):
    """One successful redemption; every 2xx answer of the redeem route writes exactly one."""

    __tablename__ = "coupon_redemptions"
    # The `unique` strategy's guarantee: use number `slot` of a code exists once. Only that
    # strategy fills `slot`; the others leave it NULL, and NULLs never collide in a UNIQUE index.
    __table_args__ = (UniqueConstraint("code", "slot", name="uq_coupon_redemptions_code_slot"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(text_column(32), ForeignKey("coupon_codes.code"))
    order_ref: Mapped[str] = mapped_column(text_column(64))
    slot: Mapped[int | None]
    strategy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
