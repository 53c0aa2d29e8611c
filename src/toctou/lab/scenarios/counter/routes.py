"""HTTP routes of the counter scenario."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from toctou.lab.deps import LabDep, RaceWindowDep
from toctou.lab.scenario import pick
from toctou.lab.scenarios.counter.ledger import read_post
from toctou.lab.scenarios.counter.schemas import MAX_POST_ID, LikeIn, LikeOut, LikeRowOut, PostOut
from toctou.lab.scenarios.counter.strategies import STRATEGIES, LikePost
from toctou.lab.schemas import ADMISSION_RESPONSES, ErrorOut, RejectedOut

__all__ = ["router"]

router = APIRouter(tags=["counter"])

PostIdPath = Annotated[int, Path(ge=1, le=MAX_POST_ID)]


@router.post(
    "/counter/{strategy}/like",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"model": ErrorOut, "description": "unknown strategy or post"},
        409: {"model": RejectedOut, "description": "already_liked, or contention"},
        422: {"model": ErrorOut, "description": "invalid body or race window"},
        **ADMISSION_RESPONSES,
    },
)
async def like(lab: LabDep, strategy: str, body: LikeIn, window_ms: RaceWindowDep) -> LikeOut:
    """Like a post as `user` with the chosen strategy."""
    chosen = pick(STRATEGIES, strategy)
    done = await chosen.run(
        lab,
        LikePost(post_id=body.post_id, user=body.user, strategy=chosen.name, window_ms=window_ms),
    )
    return LikeOut(
        effect=f"like {done.value.id}",
        like=LikeRowOut.model_validate(done.value, from_attributes=True),
        worker=lab.worker,
        attempts=done.attempts,
    )


@router.get(
    "/counter/posts/{post_id}",
    responses={
        404: {"model": ErrorOut, "description": "unknown post"},
        422: {"model": ErrorOut, "description": "invalid post id"},
        **ADMISSION_RESPONSES,
    },
)
async def get_post(lab: LabDep, post_id: PostIdPath) -> PostOut:
    """A post's like counter, its like rows, distinct users, and the damage done."""
    async with lab.db.sessions() as session:
        return (await read_post(session, post_id)).out()
