"""HTTP routes of the sign-up scenario."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from toctou.lab.deps import LabDep, RaceWindowDep
from toctou.lab.scenario import pick
from toctou.lab.scenarios.signup.models import EMAIL_LENGTH, TABLES, USERNAME_LENGTH, UniqueUser
from toctou.lab.scenarios.signup.schemas import RegisterIn, RegisterOut, SignupUserOut
from toctou.lab.scenarios.signup.strategies import STRATEGIES, Registration
from toctou.lab.schemas import ADMISSION_RESPONSES, ErrorOut, Printable, RejectedOut

__all__ = ["router"]

router = APIRouter(tags=["signup"])


@router.post(
    "/signup/{strategy}/register",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"model": ErrorOut, "description": "unknown strategy"},
        409: {"model": RejectedOut, "description": "taken, or contention"},
        422: {"model": ErrorOut, "description": "invalid body or race window"},
        **ADMISSION_RESPONSES,
    },
)
async def register(
    lab: LabDep, strategy: str, body: RegisterIn, window_ms: RaceWindowDep
) -> RegisterOut:
    """Sign up a username and an email with the chosen strategy."""
    chosen = pick(STRATEGIES, strategy)
    made = await chosen.run(
        lab,
        Registration(
            username=body.username, email=body.email, strategy=chosen.name, window_ms=window_ms
        ),
    )
    account = made.value
    prefix = "unique user" if account.table == UniqueUser.__tablename__ else "user"
    return RegisterOut(
        effect=f"{prefix} {account.id}",
        user=SignupUserOut.model_validate(account, from_attributes=True),
        worker=lab.worker,
        attempts=made.attempts,
    )


@router.get("/signup/users", responses={**ADMISSION_RESPONSES})
async def list_users(
    lab: LabDep,
    username: Annotated[
        str | None, Query(min_length=1, max_length=USERNAME_LENGTH, pattern=r"^[A-Za-z0-9_.-]+$")
    ] = None,
    email: Annotated[str | None, Query(min_length=1, max_length=EMAIL_LENGTH), Printable] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[SignupUserOut]:
    """The accounts in both tables (narrowed to a username and/or an email), oldest first."""
    found: list[SignupUserOut] = []
    async with lab.db.sessions() as session:
        for model in TABLES:
            query = select(model.id, model.username, model.email, model.strategy, model.created_at)
            if username is not None:
                query = query.where(model.username == username.lower())
            if email is not None:
                query = query.where(model.email == email.lower())
            rows = await session.execute(query.order_by(model.id).limit(limit))
            found.extend(
                SignupUserOut(
                    id=id_,
                    username=name,
                    email=mail,
                    table=model.__tablename__,
                    strategy=strategy,
                    created_at=created,
                )
                for id_, name, mail, strategy, created in rows
            )
    return found[:limit]
