"""The lab's shared bodies: the error and rejection shapes, reset, audit and the catalogue.

Each scenario's own request and response bodies live in its package.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

__all__ = [
    "ADMISSION_RESPONSES",
    "AuditOut",
    "CallOut",
    "ErrorOut",
    "HealthOut",
    "InvariantOut",
    "Printable",
    "ProbeOut",
    "RecipeOut",
    "RecipeRequestOut",
    "RejectedOut",
    "ResetIn",
    "ResetOut",
    "ScenarioAuditOut",
    "ScenarioOut",
    "ServedOut",
    "StrategyOut",
    "StrictIn",
    "error_response",
]

HoldsOut = Literal["always", "one-worker", "never"]


def _printable(value: str) -> str:
    # No control characters (PostgreSQL refuses NUL in text; a tab or a BOM in a name is a client
    # bug), no lone surrogates (no encoding stores them), and not only spaces.
    if not value.isprintable():
        raise ValueError("must contain printable characters only")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Printable = AfterValidator(_printable)
"""For every text a client sends: ``Annotated[str, Field(...), Printable]``."""


class StrictIn(BaseModel):
    """Base of every request body: an unknown field is a 422, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ServedOut(BaseModel):
    """Base of a success body that says who served it and how many transactions it took."""

    worker: int = Field(description="process id of the worker that served the request")
    attempts: int = Field(description="transactions run; more than 1 means the strategy retried")


class RejectedOut(BaseModel):
    status: Literal["rejected"] = "rejected"
    reason: str = Field(
        description="out_of_stock, insufficient_funds, contention, limit_reached, taken, ..."
    )
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
# its timeout (``database_busy``); a redis-lock strategy's 503 ``redis_unavailable`` too.
ADMISSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "body_too_large: the body is over 1 MiB"},
    503: {
        "model": ErrorOut,
        "description": "busy (queued past TOCTOU_QUEUE_TIMEOUT_S) or database_busy, with "
        "Retry-After; redis_unavailable (a redis-lock strategy without TOCTOU_REDIS_URL, or "
        "Redis not answering: then with Retry-After)",
    },
}


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    worker: int
    backend: str
    database_version: str | None = Field(
        default=None, description="the database server's version, once connected"
    )
    admission_limit: int = Field(
        description="database requests this worker runs at once (TOCTOU_POOL_SIZE + "
        "TOCTOU_MAX_OVERFLOW); the rest of a burst waits in arrival order"
    )


class ResetIn(BaseModel):
    """``{"scenario": NAME, ...its fields}`` resets one scenario, ``{}`` every one; a body
    without ``scenario`` is the inventory's (``{"item_id": 1, "stock": 1}``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"scenario": "wallet"},
                {"scenario": "inventory", "item_id": 1, "stock": 5},
                {"item_id": 1, "stock": 1},
                {},
            ]
        },
    )

    scenario: Annotated[str | None, Field(strict=True, min_length=1, max_length=64)] = None


class ResetOut(BaseModel):
    reset: list[str] = Field(description="the scenarios put back to their seed state")
    scenarios: dict[str, dict[str, Any]] = Field(description="each one's state after the reset")


class InvariantOut(BaseModel):
    name: str
    description: str
    holds: bool
    violations: list[str]


class ScenarioAuditOut(BaseModel):
    holds: bool
    damage: int = Field(description="the harm done, in damage_unit; 0 when nothing happened")
    damage_unit: str
    effects: int = Field(description="actions that took effect since the reset")
    invariants: list[InvariantOut]
    state: dict[str, Any] = Field(description="the scenario's own view of its data")


class AuditOut(BaseModel):
    holds: bool
    damage: int = Field(description="the sum of every scenario's damage")
    scenarios: dict[str, ScenarioAuditOut]


class StrategyOut(BaseModel):
    name: str
    summary: str
    holds: dict[str, HoldsOut] = Field(
        description="per backend (sqlite, postgresql, mariadb): always, one-worker or never"
    )
    why: str
    errors: str | None = Field(
        default=None, description="where it holds but answers many requests with errors"
    )
    safe: str = Field(description="the claim in words")
    needs: list[Literal["redis"]] = Field(
        default_factory=list,
        description="services it needs besides the database (redis: TOCTOU_REDIS_URL); "
        "without them it answers 503",
    )


class CallOut(BaseModel):
    method: str
    path: str
    json_body: dict[str, Any] | None = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(populate_by_name=True)


class RecipeRequestOut(CallOut):
    count: int
    offset_ms: float


class ProbeOut(CallOut):
    json_path: str
    unit: float


class RecipeOut(BaseModel):
    summary: str
    requests: list[RecipeRequestOut]
    reset: CallOut
    probe: ProbeOut | None
    success_statuses: list[int]
    expect_max_successes: int | None
    window_ms: float = Field(
        description="the race window (X-Race-Window-Ms) at which racy strategies show this race"
    )


class ScenarioOut(BaseModel):
    name: str
    title: str
    damage: str
    damage_unit: str
    summary: str
    strategies: list[StrategyOut]
    invariants: list[dict[str, str]]
    race: RecipeOut
    more_races: dict[str, RecipeOut]
