"""Request and response bodies, apart from the ORM models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

__all__ = [
    "ADMISSION_RESPONSES",
    "AuditOut",
    "ErrorOut",
    "HealthOut",
    "InvariantOut",
    "ItemAudit",
    "ItemOut",
    "OrderOut",
    "PurchaseIn",
    "PurchaseOut",
    "RejectedOut",
    "ResetIn",
    "StrategyOut",
    "error_response",
]

MAX_ITEM_ID = 2**31 - 1
MAX_STOCK = 1_000_000_000

# strict=True: "2", 1.0 and true are not quantities; a client that sends them has a bug.
ItemId = Annotated[int, Field(strict=True, ge=1, le=MAX_ITEM_ID)]
Quantity = Annotated[int, Field(strict=True, ge=1, le=1000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PurchaseIn(_In):
    """A purchase: which item, how many units, and who buys."""

    item_id: ItemId = 1
    quantity: Quantity = 1
    buyer: Annotated[str | None, Field(strict=True, max_length=64)] = None


class ResetIn(_In):
    """Put an item back to a known stock and delete its orders (the item is created if missing)."""

    item_id: ItemId = 1
    stock: Annotated[int, Field(strict=True, ge=0, le=MAX_STOCK)] = 1
    name: Annotated[str | None, Field(strict=True, min_length=1, max_length=120)] = None


class OrderOut(BaseModel):
    id: int
    item_id: int
    quantity: int
    buyer: str | None
    strategy: str
    created_at: datetime


class PurchaseOut(BaseModel):
    status: Literal["purchased"] = "purchased"
    order: OrderOut
    worker: int = Field(description="process id of the worker that served the request")
    attempts: int = Field(description="transactions run; more than 1 means the strategy retried")


class RejectedOut(BaseModel):
    status: Literal["rejected"] = "rejected"
    reason: Literal["out_of_stock", "contention"]
    message: str


class ErrorOut(BaseModel):
    error: str = Field(description="a stable code, e.g. unknown_strategy or invalid_request")
    message: str
    details: list[dict[str, object]] | None = None
    valid: list[str] | None = Field(default=None, description="the accepted values, where known")


def error_response(code: int, error: str, message: str, **extra: Any) -> JSONResponse:
    """The lab's one error shape, ``ErrorOut``, as a response."""
    body = ErrorOut(error=error, message=message, **extra).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=code)


# Every database route passes the admission gate (toctou.lab.admission): 413 for a body over its
# limit; 503 when queued past TOCTOU_QUEUE_TIMEOUT_S (``busy``) or when a database lock outlasted
# its timeout (``database_busy``).
ADMISSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "body_too_large: the body is over 1 MiB"},
    503: {
        "model": ErrorOut,
        "description": "busy (queued past TOCTOU_QUEUE_TIMEOUT_S) or database_busy; "
        "comes with Retry-After",
    },
}


class ItemOut(BaseModel):
    id: int
    name: str
    stock: int
    initial_stock: int
    units_sold: int
    order_count: int
    oversold: int = Field(description="units sold beyond the initial stock")


class ItemAudit(ItemOut):
    lost_updates: int = Field(description="units sold that the stock never lost (overwritten)")


class InvariantOut(BaseModel):
    name: str
    description: str
    holds: bool
    violations: list[str]


class AuditOut(BaseModel):
    holds: bool
    invariants: list[InvariantOut]
    items: list[ItemAudit]
    orders_total: int


class StrategyOut(BaseModel):
    name: str
    summary: str
    safe: str = Field(description="where the strategy holds")


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    worker: int
    backend: str
