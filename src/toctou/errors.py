"""The project's errors, one tree, converted to messages and exit codes only at the edges.

ToctouError
├── PlanError          a race plan or its input is invalid (CLI exit 2)
└── TargetError        the target cannot be reached or judged (CLI exit 3)
"""

from __future__ import annotations

__all__ = ["PlanError", "TargetError", "ToctouError"]


class ToctouError(Exception):
    """Base of every error toctou raises on purpose."""


class PlanError(ToctouError, ValueError):
    """A race plan, request file or config is invalid."""


class TargetError(ToctouError):
    """The target could not be reached or answered in a way that cannot be judged."""
