"""The login's request and response bodies, and its reset's fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from toctou.lab.scenarios.login.models import USERNAME_LENGTH
from toctou.lab.scenarios.login.policy import LIMIT, WINDOW
from toctou.lab.schemas import Printable, StrictIn

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "USERNAME_PATTERN",
    "LoginIn",
    "LoginOut",
    "LoginState",
    "LoginUserOut",
    "ResetScope",
]

MAX_PASSWORD_LENGTH = 128
USERNAME_PATTERN = r"^[A-Za-z0-9._@-]+$"

Username = Annotated[
    str, Field(strict=True, min_length=1, max_length=USERNAME_LENGTH, pattern=USERNAME_PATTERN)
]


class LoginIn(StrictIn):
    """A login: who, and the password to check."""

    username: Username
    password: Annotated[
        str, Field(strict=True, min_length=1, max_length=MAX_PASSWORD_LENGTH), Printable
    ]


class LoginOut(BaseModel):
    status: Literal["ok"] = "ok"
    effect: str = Field(description="the password check this login made, e.g. 'check 17'")
    username: str
    worker: int = Field(description="process id of the worker that served the request")


class ResetScope(StrictIn):
    """Put the account back: no checks, and ``failures`` failed checks (default none) in a window
    that opened ``window_age_s`` seconds ago (15 minutes or more: that window is over)."""

    failures: Annotated[int, Field(strict=True, ge=0, le=LIMIT)] = 0
    window_age_s: Annotated[int, Field(strict=True, ge=0, le=86_400)] = 0


class LoginUserOut(BaseModel):
    username: str
    failures: int = Field(description="failed checks counted in the open window")
    window_started_at: datetime | None = Field(description="naive UTC; None: no window open")
    checks: int = Field(description="password checks since the reset")
    failed_checks: int
    over_limit: int = Field(description="checks made although the window's limit was used up")


class LoginState(BaseModel):
    limit: int = LIMIT
    window_s: int = int(WINDOW.total_seconds())
    users: list[LoginUserOut]
    checks_total: int
