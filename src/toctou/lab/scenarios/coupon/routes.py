"""HTTP routes of the coupon scenario."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from toctou.lab.deps import LabDep, RaceWindowDep
from toctou.lab.scenario import pick
from toctou.lab.scenarios.coupon.ledger import read_code
from toctou.lab.scenarios.coupon.schemas import (
    MAX_CODE_LENGTH,
    CodeOut,
    RedeemIn,
    RedeemOut,
    RedemptionOut,
)
from toctou.lab.scenarios.coupon.strategies import STRATEGIES, Redeem
from toctou.lab.schemas import ADMISSION_RESPONSES, ErrorOut, Printable, RejectedOut

__all__ = ["router"]

router = APIRouter(tags=["coupon"])

CodePath = Annotated[str, Path(min_length=1, max_length=MAX_CODE_LENGTH), Printable]


@router.post(
    "/coupon/{strategy}/redeem",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"model": ErrorOut, "description": "unknown strategy or code"},
        409: {"model": RejectedOut, "description": "limit_reached, or contention"},
        422: {"model": ErrorOut, "description": "invalid body or race window"},
        **ADMISSION_RESPONSES,
    },
)
async def redeem(lab: LabDep, strategy: str, body: RedeemIn, window_ms: RaceWindowDep) -> RedeemOut:
    """Redeem a coupon code against an order with the chosen strategy."""
    chosen = pick(STRATEGIES, strategy)
    done = await chosen.run(
        lab,
        Redeem(
            code=body.code,
            order_ref=body.order_ref or f"order-{uuid.uuid4().hex[:12]}",
            strategy=chosen.name,
            window_ms=window_ms,
        ),
    )
    return RedeemOut(
        effect=f"redemption {done.value.id}",
        redemption=RedemptionOut.model_validate(done.value, from_attributes=True),
        worker=lab.worker,
        attempts=done.attempts,
    )


@router.get(
    "/coupon/codes/{code}",
    responses={
        404: {"model": ErrorOut, "description": "unknown code"},
        422: {"model": ErrorOut, "description": "empty or oversized code"},
        **ADMISSION_RESPONSES,
    },
)
async def get_code(lab: LabDep, code: CodePath) -> CodeOut:
    """A code's limit, uses, redemption rows and the redemptions nothing accounted for."""
    async with lab.db.sessions() as session:
        return (await read_code(session, code)).out()
