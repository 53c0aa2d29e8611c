"""What a lab action can answer besides success; routes turn these into HTTP responses."""

from __future__ import annotations

from typing import Literal

__all__ = ["ItemNotFound", "LabError", "Rejected"]


class LabError(Exception):
    """Base of the lab's business outcomes."""


class ItemNotFound(LabError):
    def __init__(self, item_id: int) -> None:
        super().__init__(f"no item with id {item_id}")
        self.item_id = item_id


class Rejected(LabError):
    """The purchase was refused: sold out, or a retrying strategy gave up under contention."""

    def __init__(self, reason: Literal["out_of_stock", "contention"], message: str) -> None:
        super().__init__(message)
        self.reason: Literal["out_of_stock", "contention"] = reason
