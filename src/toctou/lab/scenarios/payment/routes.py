"""HTTP routes of the payment scenario."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response, status

from toctou.lab.deps import LabDep, RaceWindowDep
from toctou.lab.errors import Invalid
from toctou.lab.scenario import pick
from toctou.lab.scenarios.payment.ledger import read_key
from toctou.lab.scenarios.payment.models import KEY_LENGTH
from toctou.lab.scenarios.payment.schemas import KEY_PATTERN, ChargeIn, ChargeOut, KeyOut
from toctou.lab.scenarios.payment.strategies import STRATEGIES, Payment
from toctou.lab.schemas import ADMISSION_RESPONSES, ErrorOut, RejectedOut

__all__ = ["REPLAYED_HEADER", "router"]

router = APIRouter(tags=["payment"])

REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str,
    Header(
        min_length=1,
        max_length=KEY_LENGTH,
        pattern=KEY_PATTERN,
        description="Required on every strategy (vulnerable only writes it down): 1-255 visible "
        "ASCII characters. One key is one charge.",
    ),
]


@router.post(
    "/payment/{strategy}/charge",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses={
        201: {
            "model": ChargeOut,
            "description": f"charged; a replay repeats the first answer with `{REPLAYED_HEADER}: "
            "true`",
        },
        404: {"model": ErrorOut, "description": "unknown strategy or account"},
        409: {
            "model": RejectedOut,
            "description": "contention; in_progress only if the key was reset while in use",
        },
        422: {
            "model": ErrorOut,
            "description": "invalid body, race window or Idempotency-Key, or more than one "
            "Idempotency-Key (invalid_request); the key reused with another body (key_reused)",
        },
        **ADMISSION_RESPONSES,
    },
)
async def charge(
    lab: LabDep,
    request: Request,
    strategy: str,
    body: ChargeIn,
    idempotency_key: IdempotencyKeyHeader,
    window_ms: RaceWindowDep,
) -> Response:
    """Charge an account once per `Idempotency-Key`.

    A key sent again (a retry, a double click, a duplicated request) gets the first answer
    again, byte for byte, with `Idempotent-Replayed: true`, and charges nothing. The same key with
    another account or amount is 422 `key_reused` (the IETF Idempotency-Key draft's status for a
    reused key; Stripe refuses it too): it is a client bug, not a retry. Only the fixed
    strategies keep these promises; see `GET /scenarios/payment`.
    """
    if len(request.headers.getlist("idempotency-key")) > 1:
        raise Invalid("invalid_request", "send one Idempotency-Key header, not several")
    chosen = pick(STRATEGIES, strategy)
    answer = await chosen.run(
        lab,
        Payment(
            key=idempotency_key,
            account_id=body.account_id,
            amount_cents=body.amount_cents,
            strategy=chosen.name,
            window_ms=window_ms,
        ),
    )
    return Response(
        answer.body,
        status_code=answer.status_code,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"} if answer.replayed else None,
    )


@router.get(
    "/payment/keys/{key:path}",
    responses={422: {"model": ErrorOut}, **ADMISSION_RESPONSES},
)
async def get_key(
    lab: LabDep,
    key: Annotated[str, Path(min_length=1, max_length=KEY_LENGTH, pattern=KEY_PATTERN)],
) -> KeyOut:
    """Every charge made with `key`, and the answer the key-row strategy stored for it."""
    async with lab.db.sessions() as session:
        return await read_key(session, key)
