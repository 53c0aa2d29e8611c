"""Every way to like a post once: lost updates and duplicate likes, the fixes, and a false fix.

Each strategy does the same business action: check the user has not liked the post yet, count one
more like, record the like. ``pause(window_ms)`` is the race window; every strategy calls it after
the check and before the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.db import is_unique_violation
from toctou.lab.errors import Rejected
from toctou.lab.runtime import Lab
from toctou.lab.scenario import Claim, Strategy, strategies
from toctou.lab.scenarios.counter.ledger import PostNotFound
from toctou.lab.scenarios.counter.models import Like, Post
from toctou.lab.transaction import Attempted, StaleVersion, pause, with_retries

__all__ = ["STRATEGIES", "LikePost", "Liked"]

Liked = Attempted[Like]


@dataclass(frozen=True, slots=True)
class LikePost:
    post_id: int
    user: str
    strategy: str
    window_ms: float = 0.0


def _already_liked(like: LikePost) -> Rejected:
    return Rejected("already_liked", f"{like.user!r} already likes post {like.post_id}")


async def _check(session: AsyncSession, like: LikePost) -> Post:
    """The post (404 if missing), once the user is found not to like it yet (409 otherwise)."""
    post = (await session.execute(select(Post).where(Post.id == like.post_id))).scalar_one_or_none()
    if post is None:
        raise PostNotFound(like.post_id)
    if await session.scalar(
        select(exists().where(Like.post_id == like.post_id, Like.user == like.user))
    ):
        raise _already_liked(like)
    return post


async def _record(session: AsyncSession, like: LikePost, *, unique: bool = False) -> Like:
    row = Like(
        post_id=like.post_id,
        user=like.user,
        unique_user=like.user if unique else None,
        strategy=like.strategy,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    await session.flush()
    return row


async def _increment(session: AsyncSession, like: LikePost) -> None:
    await session.execute(
        update(Post)
        .where(Post.id == like.post_id)
        .values(likes=Post.likes + 1)
        .execution_options(synchronize_session=False)
    )


async def like_vulnerable(lab: Lab, like: LikePost) -> Liked:
    """Check-then-insert the like, then write back likes + 1 computed in Python."""
    async with lab.db.sessions() as session, session.begin():
        post = await _check(session, like)
        await pause(like.window_ms)
        # The ORM writes the value computed here: SET likes = <absolute number>.
        post.likes = post.likes + 1
        await session.flush()  # the post row first, then the like that references it
        return Attempted(await _record(session, like))


async def like_increment(lab: Lab, like: LikePost) -> Liked:
    """SET likes = likes + 1 in the database, after the same check-then-insert of the like."""
    async with lab.db.sessions() as session, session.begin():
        await _check(session, like)
        await pause(like.window_ms)
        await _increment(session, like)
        return Attempted(await _record(session, like))


async def like_version(lab: Lab, like: LikePost) -> Liked:
    """Compare-and-swap on the post's version; a lost race retries the check and the insert."""

    async def attempt() -> Like:
        async with lab.db.sessions() as session, session.begin():
            post = await _check(session, like)
            await pause(like.window_ms)
            swapped = await session.execute(
                update(Post)
                .where(Post.id == post.id, Post.version == post.version)
                .values(likes=post.likes + 1, version=post.version + 1)
                .execution_options(synchronize_session=False)
            )
            if swapped.rowcount != 1:  # type: ignore[attr-defined]
                raise StaleVersion
            return await _record(session, like)

    return await with_retries(lab, attempt)


async def like_unique(lab: Lab, like: LikePost) -> Liked:
    """UNIQUE(post_id, user) on likes refuses a second like; the count is SET likes = likes + 1."""
    async with lab.db.sessions() as session, session.begin():
        await _check(session, like)  # the quick answer; the index is the guarantee
        await pause(like.window_ms)
        await _increment(session, like)
        try:
            return Attempted(await _record(session, like, unique=True))
        except DBAPIError as exc:
            if is_unique_violation(exc):
                raise _already_liked(like) from None
            raise


STRATEGIES = strategies(
    Strategy(
        "vulnerable",
        like_vulnerable,
        Claim.everywhere(
            "never",
            "every request reads the same count and writes back the same count + 1 (lost "
            "updates), and one user's requests all find no like yet (duplicate likes)",
        ),
    ),
    Strategy(
        "increment",
        like_increment,
        Claim.everywhere(
            "never",
            "fixes the lost update only: the count always matches the rows, but one user's "
            "requests all pass the check before any like is written, so they like twice",
        ),
    ),
    Strategy(
        "version",
        like_version,
        Claim.everywhere(
            "always",
            "every like bumps the post's version; a request whose check went stale loses the "
            "compare-and-swap and retries, and the retry's check sees the like",
            errors="may answer 409 contention when retries run out",
        ),
    ),
    Strategy(
        "unique",
        like_unique,
        Claim.everywhere(
            "always",
            "the index refuses a second like of one user however stale the check was, and "
            "likes + 1 in the database loses no count",
        ),
    ),
)
