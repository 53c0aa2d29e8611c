"""What one lab process holds while it runs: settings, database, and its process-local locks."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from toctou.lab.config import Settings
from toctou.lab.db import Database

__all__ = ["Lab"]


@dataclass(slots=True)
class Lab:
    settings: Settings
    db: Database
    worker: int = field(default_factory=os.getpid)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def process_lock(self, name: str) -> asyncio.Lock:
        """The ``mutex`` strategies' lock called ``name``: one per process, which is exactly
        why it is a false fix with several workers."""
        return self._locks.setdefault(name, asyncio.Lock())
