"""The counter's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from toctou.lab.schemas import Printable, ServedOut, StrictIn

__all__ = [
    "MAX_POST_ID",
    "AuditScope",
    "CounterState",
    "LikeIn",
    "LikeOut",
    "LikeRowOut",
    "PostOut",
    "ResetScope",
]

MAX_POST_ID = 2**31 - 1


PostId = Annotated[int, Field(strict=True, ge=1, le=MAX_POST_ID)]
User = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=64, examples=["ada"]),
    Printable,
]


class LikeIn(StrictIn):
    """``user`` likes post ``post_id``; once per user and post."""

    post_id: PostId
    user: User


class ResetScope(StrictIn):
    """Put a post back to no likes (the post is created if missing).

    Without ``post_id`` the whole scenario goes back to its seed: post 1, no likes.
    """

    post_id: PostId | None = None
    title: Annotated[str | None, Field(strict=True, min_length=1, max_length=120), Printable] = None


class AuditScope(StrictIn):
    """Narrow the audit to one post (``?scenario=counter&post_id=5``)."""

    post_id: Annotated[int | None, Field(ge=1, le=MAX_POST_ID)] = None


class LikeRowOut(BaseModel):
    id: int
    post_id: int
    user: str
    strategy: str
    created_at: datetime


class LikeOut(ServedOut):
    status: Literal["liked"] = "liked"
    effect: str = Field(description="the like this wrote, e.g. 'like 17'")
    like: LikeRowOut


class PostOut(BaseModel):
    id: int
    title: str
    likes: int = Field(description="the counter column")
    like_rows: int
    distinct_users: int
    lost_updates: int = Field(description="like rows the counter missed (overwritten)")
    duplicate_likes: int = Field(description="like rows beyond one per user")
    damage: int = Field(description="lost_updates + duplicate_likes")


class CounterState(BaseModel):
    posts: list[PostOut]
    likes_total: int
