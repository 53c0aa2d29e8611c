"""What a lab action can answer besides success; the app turns these into HTTP responses.

Scenarios raise these and never build error responses themselves, so every scenario answers in
the lab's one error shape (``toctou.lab.schemas.ErrorOut``) and its one rejection shape
(``RejectedOut``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ClientError",
    "Invalid",
    "LabError",
    "NotFound",
    "Rejected",
    "Unavailable",
    "UnknownScenario",
    "UnknownStrategy",
]


class LabError(Exception):
    """Base of the lab's business outcomes."""


class ClientError(LabError):
    """A request the lab cannot act on, answered in the one error shape with a stable ``error``
    code (``ErrorOut``: ``{"error", "message", "valid"?}``)."""

    status_code = 400

    def __init__(self, error: str, message: str, valid: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.valid = list(valid) if valid is not None else None


class NotFound(ClientError):
    """404: ``item_not_found``, ``account_not_found``, ``unknown_strategy``, ..."""

    status_code = 404


class Invalid(ClientError):
    """422 for a request that is well-formed but cannot be meant, e.g. ``key_reused``."""

    status_code = 422


class UnknownStrategy(NotFound):
    def __init__(self, name: str, valid: Sequence[str]) -> None:
        super().__init__(
            "unknown_strategy", f"unknown strategy {name!r}; valid: {', '.join(valid)}", valid
        )


class UnknownScenario(NotFound):
    def __init__(self, name: str, valid: Sequence[str]) -> None:
        super().__init__(
            "unknown_scenario", f"unknown scenario {name!r}; valid: {', '.join(valid)}", valid
        )


class Unavailable(LabError):
    """503 in the one error shape: the action needs a service this lab has not got or cannot
    reach (``redis_unavailable``); with ``Retry-After`` where trying again may help."""

    status_code = 503

    def __init__(self, error: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.retry_after = retry_after


class Rejected(LabError):
    """The action was refused as the business rules say: sold out, funds too low, a code used
    up, a name taken, too many attempts, or a retrying strategy that gave up (``contention``).

    Answered as ``{"status": "rejected", "reason": ..., "message": ...}`` with ``status_code``
    (409 unless said otherwise: 429 for a rate limit, 401 for a wrong password), ``headers``
    and any ``extra`` fields.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status_code: int = 409,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status_code = status_code
        self.headers = headers or {}
        self.extra = extra
