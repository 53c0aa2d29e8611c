"""What a scenario is: its strategies and where each holds, its race recipe, reset and audit.

A scenario is one package under ``toctou.lab.scenarios``; its ``__init__`` builds one
``Scenario`` record and the registry (``toctou.lab.scenarios.SCENARIOS``) lists them all. The app,
``/lab/reset``, ``/lab/audit`` and the catalogue (``GET /scenarios``) only ever loop over that
registry, so adding a scenario edits no shared module (ARCHITECTURE.md, "Add a scenario").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.db import Backend
from toctou.lab.errors import UnknownStrategy
from toctou.lab.runtime import Lab

__all__ = [
    "BACKENDS",
    "Audit",
    "Check",
    "Claim",
    "Holds",
    "Need",
    "NoScope",
    "Probe",
    "Recipe",
    "RecipeCall",
    "RecipeRequest",
    "Scenario",
    "Strategy",
    "pick",
    "strategies",
]

Holds = Literal["always", "one-worker", "never"]
Need = Literal["redis"]
"""A service a strategy needs besides the database (``redis``: ``TOCTOU_REDIS_URL``)."""
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql", "mariadb")

ActionT = TypeVar("ActionT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True, slots=True)
class Claim:
    """Where a strategy holds, per backend, and why; tests derive their expectations from it.

    ``errors`` says so where a strategy holds but answers many requests with errors or
    rejections it need not have (retry exhaustion, deadlocks).
    """

    sqlite: Holds
    postgresql: Holds
    mariadb: Holds
    why: str
    errors: str | None = None

    @classmethod
    def everywhere(cls, holds: Holds, why: str, errors: str | None = None) -> Claim:
        return cls(holds, holds, holds, why, errors)

    def on(self, backend: Backend) -> Holds:
        holds: Holds = getattr(self, backend)
        return holds

    def holds_with(self, backend: Backend, workers: int) -> bool:
        """Whether the strategy should show no damage on ``backend`` with ``workers`` processes."""
        claim = self.on(backend)
        return claim == "always" or (claim == "one-worker" and workers == 1)


@dataclass(frozen=True, slots=True)
class Strategy(Generic[ActionT, ResultT]):
    """One way to do a scenario's action; its docstring is the one-line summary."""

    name: str
    run: Callable[[Lab, ActionT], Awaitable[ResultT]]
    holds: Claim
    needs: tuple[Need, ...] = ()
    """Without them configured it answers 503 and changes nothing; the catalogue says so."""

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]


def strategies(*listed: Strategy[ActionT, ResultT]) -> Mapping[str, Strategy[ActionT, ResultT]]:
    """A scenario's strategies by name, in the order given (vulnerable first, by convention)."""
    return {s.name: s for s in listed}


def pick(listed: Mapping[str, Strategy[ActionT, ResultT]], name: str) -> Strategy[ActionT, ResultT]:
    """The strategy called ``name``; a 404 naming the valid ones otherwise."""
    chosen = listed.get(name)
    if chosen is None:
        raise UnknownStrategy(name, list(listed))
    return chosen


@dataclass(frozen=True, slots=True)
class RecipeCall:
    """One request to the lab; ``path`` may hold ``{strategy}``, the only placeholder."""

    method: str
    path: str
    json: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecipeRequest(RecipeCall):
    """A request of the race, sent ``count`` times, released ``offset_ms`` after the others."""

    count: int = 1
    offset_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Probe(RecipeCall):
    """A state read before and after a round: it must change by successes x ``unit``
    (``unit`` 0: it must not change at all, e.g. ``$.damage`` of the scenario's audit)."""

    json_path: str = "$.damage"
    unit: float = 0.0


@dataclass(frozen=True, slots=True)
class Recipe:
    """The requests that show a scenario's race, and how to judge them."""

    requests: tuple[RecipeRequest, ...]
    reset: RecipeCall
    success_statuses: tuple[int, ...]
    probe: Probe | None = None
    expect_max_successes: int | None = None
    summary: str = ""
    window_ms: float = 50.0
    """The race window (``X-Race-Window-Ms``) at which every racy strategy shows this race
    within a few rounds: the matrix and the catalogue-driven tests race at it."""


class NoScope(BaseModel):
    """No fields: the scenario's reset or audit takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Check:
    """One invariant's result: its violations, each a sentence naming the rows."""

    name: str
    violations: list[str]

    @property
    def holds(self) -> bool:
        return not self.violations


@dataclass(frozen=True, slots=True)
class Audit:
    """What a scenario's audit found.

    ``damage`` counts the harm in the scenario's own unit (0 when nothing happened);
    ``effects`` counts the actions that took effect since the reset (orders, charges, rows), so a
    test can match them against the answers; ``state`` is the scenario's own view of its data.
    """

    checks: list[Check]
    damage: int
    effects: int
    state: BaseModel


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """Everything the lab, its catalogue and its tools need to know about one scenario."""

    name: str
    title: str
    damage: str
    """Which of the seed's kinds of damage, or the tester's class (limit overrun, ...)."""
    damage_unit: str
    """What ``Audit.damage`` counts: "units oversold", "cents", "duplicate rows", ..."""
    summary: str
    router: APIRouter
    strategies: Mapping[str, Strategy[Any, Any]]
    invariants: Mapping[str, str]
    """Invariant name -> description; the audit's checks come in this order."""
    race: Recipe
    more_races: Mapping[str, Recipe] = field(default_factory=dict)
    """Recipes for the scenario's other actions (wallet: transfer beside withdraw)."""
    seed: Callable[[AsyncSession], Awaitable[None]]
    """Insert the seed rows that are missing; runs at start-up in every worker (idempotent)."""
    reset_scope: type[BaseModel] = NoScope
    reset: Callable[[AsyncSession, Any], Awaitable[BaseModel]]
    """Put the scenario back to its seed state (narrowed by its ``reset_scope``); return it."""
    audit_scope: type[BaseModel] = NoScope
    audit: Callable[[AsyncSession, Any], Awaitable[Audit]]
    database_free_paths: tuple[str, ...] = ()
    """Routes that never touch the database, so the admission gate lets them straight through."""

    def __post_init__(self) -> None:
        if not self.invariants or not self.strategies:
            raise ValueError(f"scenario {self.name!r} needs invariants and strategies")
        for recipe in (self.race, *self.more_races.values()):
            if not recipe.requests:
                raise ValueError(f"scenario {self.name!r}: a recipe needs requests")
