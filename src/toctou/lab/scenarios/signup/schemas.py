"""The sign-up's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from toctou.lab.scenarios.signup.models import EMAIL_LENGTH, USERNAME_LENGTH
from toctou.lab.schemas import Printable, ServedOut, StrictIn

__all__ = [
    "Email",
    "RegisterIn",
    "RegisterOut",
    "SignupState",
    "SignupUserOut",
    "TableState",
    "Username",
]

Table = Literal["signup_users", "signup_unique_users"]


def _email(value: str) -> str:
    local, at, domain = value.partition("@")
    labels = domain.split(".")
    if not at or not local or "@" in domain or any(c.isspace() for c in value):
        raise ValueError("an email is one '@' between a non-empty name and a domain, no spaces")
    if len(labels) < 2 or not all(labels):
        raise ValueError("an email's domain has a dot between non-empty labels, e.g. example.org")
    return value.lower()


# Names are stored lowercased, so "Ada" and "ada" are one account on every backend (MariaDB's
# default collation would compare them equal anyway, PostgreSQL's and SQLite's would not).
Username = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=USERNAME_LENGTH,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="1-64 letters, digits, '_', '.' or '-'; stored lowercased",
    ),
    AfterValidator(str.lower),
]
Email = Annotated[
    str,
    Field(strict=True, min_length=3, max_length=EMAIL_LENGTH, description="stored lowercased"),
    Printable,
    AfterValidator(_email),
]


class RegisterIn(StrictIn):
    """A new account: a username and an email, each of which may be taken only once."""

    username: Username
    email: Email


class SignupUserOut(BaseModel):
    id: int
    username: str
    email: str
    table: Table = Field(description="signup_unique_users for the `unique` strategy")
    strategy: str
    created_at: datetime


class RegisterOut(ServedOut):
    status: Literal["registered"] = "registered"
    effect: str = Field(
        description="the row this sign-up wrote: 'user 17' (signup_users) or "
        "'unique user 17' (signup_unique_users)"
    )
    user: SignupUserOut


class TableState(BaseModel):
    rows: int
    duplicate_rows: int = Field(description="rows whose username or email an earlier row has")
    duplicated: list[str] = Field(description="the usernames and emails held more than once")


class SignupState(BaseModel):
    signup_users: TableState
    signup_unique_users: TableState
