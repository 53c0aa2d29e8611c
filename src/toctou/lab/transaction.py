"""Pieces every scenario's strategies share: the race window, the retry loop, locking reads.

``pause(window_ms)`` is the race window. Every strategy of every scenario calls it at the same
point: after the check or the claim, before the transaction commits. With a zero window there is
no sleep at all, and the awaits on the database are still real interleaving points.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from toctou.lab.db import is_retryable
from toctou.lab.errors import Rejected
from toctou.lab.runtime import Lab

__all__ = ["Attempted", "StaleVersion", "for_update", "pause", "with_retries"]

T = TypeVar("T")
SelectT = TypeVar("SelectT", bound=Select[Any])


async def pause(window_ms: float) -> None:
    """The race window: a delay between check and commit (none at all when it is 0)."""
    if window_ms > 0:
        await asyncio.sleep(window_ms / 1000)


class StaleVersion(Exception):
    """Someone else changed the row between our read and our compare-and-swap: retry."""


@dataclass(frozen=True)  # no slots: a slotted generic frozen dataclass breaks Attempted[X](...)
class Attempted(Generic[T]):
    """What a strategy produced, and how many transactions it took (more than 1: it retried)."""

    value: T
    attempts: int = 1


def _retrying(attempts: int) -> AsyncRetrying:
    # tenacity: bounded attempts, full-jitter exponential backoff (0..2 ms * 2^n, cap 50 ms).
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.002, max=0.05),
        retry=retry_if_exception(lambda e: isinstance(e, StaleVersion) or is_retryable(e)),
    )


async def with_retries(lab: Lab, attempt: Callable[[], Awaitable[T]]) -> Attempted[T]:
    """Run ``attempt`` (one whole transaction) again on a stale version, a serialisation
    failure or a deadlock, up to ``TOCTOU_RETRY_ATTEMPTS`` times; then 409 ``contention``."""
    try:
        async for try_ in _retrying(lab.settings.retry_attempts):
            with try_:
                value = await attempt()
            outcome = try_.retry_state.outcome
            if outcome is not None and not outcome.failed:  # failed attempts loop round again
                return Attempted(value, try_.retry_state.attempt_number)
    except RetryError as exc:
        raise Rejected(
            "contention", f"gave up after {exc.last_attempt.attempt_number} attempts"
        ) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


def for_update(query: SelectT, session: AsyncSession) -> SelectT:
    """``SELECT ... FOR UPDATE``; on PostgreSQL ``FOR NO KEY UPDATE``, so inserting a row that
    references the locked one (a foreign key check takes ``FOR KEY SHARE``) does not wait on it.
    SQLite renders no lock at all: there the lock is the ``BEGIN IMMEDIATE`` of
    ``lab.db.locking_sessions``."""
    return query.with_for_update(key_share=session.get_bind().dialect.name == "postgresql")
