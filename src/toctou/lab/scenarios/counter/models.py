"""The counter's tables: posts with a like counter, and one row per like."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from toctou.lab.models import Base, text_column

__all__ = ["Like", "Post"]


class Post(Base):
    """A post; ``likes`` is the denormalised counter the strategies raise."""

    __tablename__ = "counter_posts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(120))
    likes: Mapped[int]
    version: Mapped[int] = mapped_column(default=0)


class Like(Base):
    """One like; every 2xx answer of the like route writes exactly one."""

    __tablename__ = "counter_likes"
    __table_args__ = (
        # The `unique` strategy's guarantee. Only it fills `unique_user` (with the user); the
        # others leave it NULL, and NULLs never collide in a UNIQUE index.
        UniqueConstraint("post_id", "unique_user", name="uq_counter_likes_post_user"),
        Index("ix_counter_likes_post_user", "post_id", "user_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("counter_posts.id"))
    user: Mapped[str] = mapped_column("user_name", text_column(64))
    unique_user: Mapped[str | None] = mapped_column(text_column(64))
    strategy: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
