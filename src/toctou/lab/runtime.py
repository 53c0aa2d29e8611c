"""What one lab process holds while it runs: settings, database, and its process-local lock."""

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
    # The `mutex` strategy's lock: one per process, which is exactly why it is a false fix.
    mutex: asyncio.Lock = field(default_factory=asyncio.Lock)
