"""HTTP routes of the wallet scenario."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from toctou.lab.deps import LabDep, RaceWindowDep
from toctou.lab.scenario import pick
from toctou.lab.scenarios.wallet.ledger import read_account
from toctou.lab.scenarios.wallet.models import Transfer, Withdrawal
from toctou.lab.scenarios.wallet.schemas import (
    MAX_ACCOUNT_ID,
    AccountOut,
    TransferIn,
    TransferOut,
    TransferRecord,
    WithdrawalRecord,
    WithdrawIn,
    WithdrawOut,
)
from toctou.lab.scenarios.wallet.strategies import STRATEGIES, Movement
from toctou.lab.schemas import ADMISSION_RESPONSES, ErrorOut, RejectedOut

__all__ = ["router"]

router = APIRouter(tags=["wallet"])

AccountIdPath = Annotated[int, Path(ge=1, le=MAX_ACCOUNT_ID)]


def _responses(refused: str) -> dict[int | str, dict[str, Any]]:
    return {
        404: {"model": ErrorOut, "description": "unknown strategy or account"},
        409: {"model": RejectedOut, "description": refused},
        422: {"model": ErrorOut, "description": "invalid body or race window"},
        **ADMISSION_RESPONSES,
    }


@router.post(
    "/wallet/{strategy}/withdraw",
    status_code=status.HTTP_201_CREATED,
    responses=_responses("insufficient_funds, or contention"),
)
async def withdraw(
    lab: LabDep, strategy: str, body: WithdrawIn, window_ms: RaceWindowDep
) -> WithdrawOut:
    """Take `amount_cents` out of an account with the chosen strategy; never below zero."""
    chosen = pick(STRATEGIES, strategy)
    done = await chosen.run(
        lab,
        Movement(
            debit=body.account_id,
            amount=body.amount_cents,
            strategy=chosen.name,
            window_ms=window_ms,
        ),
    )
    entry = done.value
    if not isinstance(entry, Withdrawal):
        raise TypeError(f"a withdrawal wrote {entry!r}")
    return WithdrawOut(
        effect=f"withdrawal {entry.id}",
        withdrawal=WithdrawalRecord.model_validate(entry, from_attributes=True),
        worker=lab.worker,
        attempts=done.attempts,
    )


@router.post(
    "/wallet/{strategy}/transfer",
    status_code=status.HTTP_201_CREATED,
    responses=_responses("insufficient_funds in from_account, or contention"),
)
async def transfer(
    lab: LabDep, strategy: str, body: TransferIn, window_ms: RaceWindowDep
) -> TransferOut:
    """Move `amount_cents` between two accounts with the chosen strategy; money is conserved."""
    chosen = pick(STRATEGIES, strategy)
    done = await chosen.run(
        lab,
        Movement(
            debit=body.from_account,
            credit=body.to_account,
            amount=body.amount_cents,
            strategy=chosen.name,
            window_ms=window_ms,
        ),
    )
    entry = done.value
    if not isinstance(entry, Transfer):
        raise TypeError(f"a transfer wrote {entry!r}")
    return TransferOut(
        effect=f"transfer {entry.id}",
        transfer=TransferRecord.model_validate(entry, from_attributes=True),
        worker=lab.worker,
        attempts=done.attempts,
    )


@router.get(
    "/wallet/accounts/{account_id}", responses={404: {"model": ErrorOut}, **ADMISSION_RESPONSES}
)
async def get_account(lab: LabDep, account_id: AccountIdPath) -> AccountOut:
    """Balance, initial balance, what the ledger says left and arrived, and the damage."""
    async with lab.db.sessions() as session:
        return (await read_account(session, account_id)).out()
