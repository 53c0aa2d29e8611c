"""Reading, auditing and resetting the posts' likes: what a race did to them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import NotFound
from toctou.lab.scenario import Audit, Check
from toctou.lab.scenarios.counter.models import Like, Post
from toctou.lab.scenarios.counter.schemas import AuditScope, CounterState, PostOut, ResetScope

__all__ = [
    "INVARIANTS",
    "SEED_POST",
    "PostNotFound",
    "PostView",
    "audit",
    "read_post",
    "reset",
    "seed",
]

SEED_POST = 1
SEED_TITLE = "Hello, world"

INVARIANTS = {
    "count_matches_rows": "likes == like rows for every post (a difference is a lost update)",
    "one_like_per_user": "at most one like per user and post (more is a duplicate like)",
}


class PostNotFound(NotFound):
    def __init__(self, post_id: int) -> None:
        super().__init__("post_not_found", f"no post with id {post_id}")
        self.post_id = post_id


@dataclass(frozen=True, slots=True)
class PostView:
    id: int
    title: str
    likes: int
    rows: int
    users: int

    @property
    def lost_updates(self) -> int:
        return max(0, self.rows - self.likes)

    @property
    def duplicates(self) -> int:
        return self.rows - self.users

    @property
    def damage(self) -> int:
        return self.lost_updates + self.duplicates

    def out(self) -> PostOut:
        return PostOut(
            id=self.id,
            title=self.title,
            likes=self.likes,
            like_rows=self.rows,
            distinct_users=self.users,
            lost_updates=self.lost_updates,
            duplicate_likes=self.duplicates,
            damage=self.damage,
        )


async def read_posts(session: AsyncSession, post_id: int | None = None) -> list[PostView]:
    liked = (
        select(
            Like.post_id,
            func.count(Like.id).label("n"),
            func.count(distinct(Like.user)).label("users"),
        )
        .group_by(Like.post_id)
        .subquery()
    )
    query = (
        select(
            Post.id,
            Post.title,
            Post.likes,
            func.coalesce(liked.c.n, 0),
            func.coalesce(liked.c.users, 0),
        )
        .outerjoin(liked, liked.c.post_id == Post.id)
        .order_by(Post.id)
    )
    if post_id is not None:
        query = query.where(Post.id == post_id)
    rows = await session.execute(query)
    return [
        PostView(int(id_), title, int(likes), int(n), int(users))
        for id_, title, likes, n, users in rows
    ]


async def read_post(session: AsyncSession, post_id: int) -> PostView:
    views = await read_posts(session, post_id)
    if not views:
        raise PostNotFound(post_id)
    return views[0]


async def audit(session: AsyncSession, scope: AuditScope) -> Audit:
    """Check every post's counter and likes and say which posts break them."""
    if scope.post_id is not None:
        posts = [await read_post(session, scope.post_id)]
    else:
        posts = await read_posts(session)
    checks = [
        Check(
            "count_matches_rows",
            [
                f"post {v.id}: likes {v.likes}, {v.rows} like rows"
                for v in posts
                if v.likes != v.rows
            ],
        ),
        Check(
            "one_like_per_user",
            [
                f"post {v.id}: {v.rows} likes from {v.users} users ({v.duplicates} duplicates)"
                for v in posts
                if v.duplicates
            ],
        ),
    ]
    total = sum(v.rows for v in posts)
    state = CounterState(posts=[v.out() for v in posts], likes_total=total)
    return Audit(checks=checks, damage=sum(v.damage for v in posts), effects=total, state=state)


async def reset_post(session: AsyncSession, *, post_id: int, title: str | None = None) -> None:
    """Delete the post's likes and zero its counter; create it if missing."""
    await session.execute(delete(Like).where(Like.post_id == post_id))
    post = await session.get(Post, post_id)
    if post is None:
        default = SEED_TITLE if post_id == SEED_POST else f"Post {post_id}"
        session.add(Post(id=post_id, title=title or default, likes=0, version=0))
    else:
        post.likes = 0
        post.version = 0
        if title is not None:
            post.title = title
    await session.flush()


async def reset(session: AsyncSession, scope: ResetScope) -> PostOut:
    """One post to no likes (``post_id`` given), or the whole scenario back to its seed."""
    if scope.post_id is None:
        await session.execute(delete(Like))
        await session.execute(delete(Post).where(Post.id != SEED_POST))
    post_id = SEED_POST if scope.post_id is None else scope.post_id
    await reset_post(session, post_id=post_id, title=scope.title)
    return (await read_post(session, post_id)).out()


async def seed(session: AsyncSession) -> None:
    """Post 1 with no likes, unless it is there already."""
    if await session.get(Post, SEED_POST) is None:
        session.add(Post(id=SEED_POST, title=SEED_TITLE, likes=0, version=0))
        await session.flush()
