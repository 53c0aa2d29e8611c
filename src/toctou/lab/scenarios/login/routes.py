"""HTTP routes of the login scenario."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from toctou.lab.deps import LabDep, RaceWindowDep
from toctou.lab.scenario import pick
from toctou.lab.scenarios.login.ledger import read_user
from toctou.lab.scenarios.login.models import USERNAME_LENGTH
from toctou.lab.scenarios.login.schemas import USERNAME_PATTERN, LoginIn, LoginOut, LoginUserOut
from toctou.lab.scenarios.login.strategies import STRATEGIES, Login
from toctou.lab.schemas import ADMISSION_RESPONSES, ErrorOut, RejectedOut

__all__ = ["router"]

router = APIRouter(tags=["login"])


@router.post(
    "/login/{strategy}/login",
    responses={
        401: {"model": RejectedOut, "description": "wrong_password, with the check's `effect`"},
        404: {"model": ErrorOut, "description": "unknown strategy, or user_not_found"},
        422: {"model": ErrorOut, "description": "invalid body or race window"},
        429: {
            "model": RejectedOut,
            "description": "rate_limited: 5 failed checks in the window; no password was "
            "checked; comes with Retry-After",
        },
        **ADMISSION_RESPONSES,
    },
)
async def login(lab: LabDep, strategy: str, body: LoginIn, window_ms: RaceWindowDep) -> LoginOut:
    """Check a password, at most 5 failures per account per 15-minute window.

    The window opens at the first check; once 5 checks in it have failed, every login is 429
    `rate_limited` with `Retry-After` until it is over, and no password is compared (the right
    one neither). Every comparison made is recorded; its answer names it: 200 with `"effect":
    "check <id>"`, or 401 `wrong_password` with the same. The seed user is `ada`, password
    `analytical-engine-1843`.

    An unknown user is 404 `user_not_found`, with no check made. A real site should answer it
    exactly like a wrong password, or the login tells anyone which accounts exist; the lab keeps
    them apart so that every 401 is a password check it recorded and the audit can count.
    """
    chosen = pick(STRATEGIES, strategy)
    verified = await chosen.run(
        lab,
        Login(
            username=body.username,
            password=body.password,
            strategy=chosen.name,
            window_ms=window_ms,
        ),
    )
    return LoginOut(
        effect=f"check {verified.check_id}", username=verified.username, worker=lab.worker
    )


@router.get(
    "/login/users/{username}",
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}, **ADMISSION_RESPONSES},
)
async def get_user(
    lab: LabDep,
    username: Annotated[
        str, Path(min_length=1, max_length=USERNAME_LENGTH, pattern=USERNAME_PATTERN)
    ],
) -> LoginUserOut:
    """The account's failure count and window, and its checks since the reset."""
    async with lab.db.sessions() as session:
        return await read_user(session, username)
