"""The rate limit and the passwords: what every strategy enforces and the audit replays.

At most ``LIMIT`` failed password checks per account in a window of ``WINDOW``. A window opens
at the first check made while none is open (after a reset, or once the last one is over); while
it has ``LIMIT`` failures, no password is checked at all, the right one neither (429). A right
password does not reset the count: the limiter cannot tell the owner from a lucky guess.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from datetime import UTC, datetime, timedelta

__all__ = [
    "LIMIT",
    "SEED_PASSWORD",
    "SEED_USERNAME",
    "WINDOW",
    "hash_password",
    "new_salt",
    "password_matches",
    "retry_after_s",
    "utcnow",
    "window_open",
]

LIMIT = 5
WINDOW = timedelta(minutes=15)
SEED_USERNAME = "ada"
SEED_PASSWORD = "analytical-engine-1843"  # published: the lab's demo account
_ITERATIONS = 1_000  # few: a lab, and every check runs on the event loop


def utcnow() -> datetime:
    """Now, as the naive UTC the login's tables store."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_salt() -> str:
    return os.urandom(16).hex()


def hash_password(password: str, salt: str) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), _ITERATIONS)
    return digest.hex()


def password_matches(password: str, salt: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_password(password, salt), stored_hash)


def window_open(started_at: datetime | None, now: datetime) -> bool:
    """Whether the window that opened at ``started_at`` still counts at ``now``."""
    return started_at is not None and now < started_at + WINDOW


def retry_after_s(started_at: datetime | None, now: datetime) -> int:
    """Whole seconds until the window that opened at ``started_at`` is over (at least 1)."""
    if started_at is None:
        return math.ceil(WINDOW.total_seconds())
    return max(1, math.ceil((started_at + WINDOW - now).total_seconds()))
