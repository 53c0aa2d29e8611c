"""What a lab action can answer besides success; the app turns these into HTTP responses.

Scenarios raise these and never build error responses themselves, so every scenario answers in
the lab's one error shape (``toctou.lab.schemas.ErrorOut``) and its one rejection shape
(``RejectedOut``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["LabError", "NotFound", "Rejected", "UnknownScenario", "UnknownStrategy"]


class LabError(Exception):
    """Base of the lab's business outcomes."""


class NotFound(LabError):
    """404 with a stable ``error`` code: ``item_not_found``, ``account_not_found``, ..."""

    def __init__(self, error: str, message: str, valid: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.valid = list(valid) if valid is not None else None


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


class Rejected(LabError):
    """The action was refused as the business rules say: sold out, funds too low, a code used
    up, a name taken, too many attempts, or a retrying strategy that gave up (``contention``).

    Answered as ``{"status": "rejected", "reason": ..., "message": ...}`` with ``status_code``
    (409 unless said otherwise, e.g. 429 for a rate limit), ``headers`` and any ``extra`` fields.
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
