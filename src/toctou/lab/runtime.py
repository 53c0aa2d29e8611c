"""What one lab process holds while it runs: settings, database, its process-local locks, and
the Redis client the ``redis-lock`` strategies open on first use."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from toctou.lab.config import Settings
from toctou.lab.db import Database

if TYPE_CHECKING:
    from toctou.lab.redislock import RedisLocks

__all__ = ["Lab"]


@dataclass(slots=True)
class Lab:
    settings: Settings
    db: Database
    worker: int = field(default_factory=os.getpid)
    redis: RedisLocks | None = None
    """Set by ``toctou.lab.redislock.redis_locks`` on first use; closed by ``aclose``."""
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def process_lock(self, name: str) -> asyncio.Lock:
        """The ``mutex`` strategies' lock called ``name``: one per process, which is exactly
        why it is a false fix with several workers."""
        return self._locks.setdefault(name, asyncio.Lock())

    async def aclose(self) -> None:
        """Close what the process opened on demand (the database is the app's to dispose)."""
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
