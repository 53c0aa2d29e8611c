"""The lab's scenario catalogue as its clients read it, and race plans built from its recipes.

The demo, the tests and the benchmarks race a scenario through ``GET /scenarios`` and
``recipe_plan``, never through URLs of their own: the lab's catalogue is the one place that says
what its races are. Only HTTP connects this module to the lab (it imports no lab code).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from toctou.engine import Oracle, Probe, RacePlan, RaceRequest, SuccessRule, Technique

__all__ = [
    "CatalogueError",
    "RecipeInfo",
    "ScenarioInfo",
    "StrategyInfo",
    "fetch_catalogue",
    "recipe_plan",
    "scale_recipe",
]

Holds = Literal["always", "one-worker", "never"]


class CatalogueError(RuntimeError):
    """The lab's catalogue could not be read, or names no such scenario or strategy."""


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class CallInfo(_Read):
    method: str
    path: str
    json_body: dict[str, Any] | None = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)


class RequestInfo(CallInfo):
    count: int = 1
    offset_ms: float = 0.0


class ProbeInfo(CallInfo):
    json_path: str
    unit: float


class RecipeInfo(_Read):
    summary: str = ""
    requests: tuple[RequestInfo, ...]
    reset: CallInfo
    probe: ProbeInfo | None = None
    success_statuses: tuple[int, ...] = ()
    expect_max_successes: int | None = None
    window_ms: float = 50.0
    """The race window at which the lab's racy strategies show this race."""


class StrategyInfo(_Read):
    name: str
    summary: str
    holds: dict[str, Holds]
    why: str
    errors: str | None = None
    safe: str = ""
    needs: tuple[str, ...] = ()

    @property
    def holds_everywhere(self) -> bool:
        """The claim is ``always`` on every backend."""
        return set(self.holds.values()) == {"always"}

    @property
    def never_holds(self) -> bool:
        """The claim is ``never`` on every backend: the scenario's vulnerable strategy."""
        return set(self.holds.values()) == {"never"}

    def holds_with(self, backend: str, workers: int) -> bool:
        """Whether the catalogue says this strategy holds on ``backend`` with ``workers``."""
        claim = self.holds[backend]
        return claim == "always" or (claim == "one-worker" and workers == 1)


class ScenarioInfo(_Read):
    name: str
    title: str
    damage: str
    damage_unit: str
    summary: str
    strategies: tuple[StrategyInfo, ...]
    invariants: tuple[dict[str, str], ...]
    race: RecipeInfo
    more_races: dict[str, RecipeInfo] = Field(default_factory=dict)

    def strategy(self, name: str) -> StrategyInfo:
        for strategy in self.strategies:
            if strategy.name == name:
                return strategy
        valid = ", ".join(s.name for s in self.strategies)
        raise CatalogueError(f"scenario {self.name!r} has no strategy {name!r}; valid: {valid}")

    def recipes(self) -> dict[str, RecipeInfo]:
        """Every race of the scenario: the main one under ``race``, then the others."""
        return {"race": self.race, **self.more_races}


def fetch_catalogue(base_url: str, *, timeout: float = 10.0) -> dict[str, ScenarioInfo]:
    """Read ``GET /scenarios`` of the lab at ``base_url``: scenario name -> its description."""
    try:
        reply = httpx.get(f"{base_url}/scenarios", timeout=timeout)
        reply.raise_for_status()
        listed = [ScenarioInfo.model_validate(s) for s in reply.json()]
    except (httpx.HTTPError, ValueError) as exc:
        raise CatalogueError(f"cannot read the catalogue at {base_url}/scenarios: {exc}") from exc
    return {s.name: s for s in listed}


def scale_recipe(recipe: RecipeInfo, requests: int) -> RecipeInfo:
    """The recipe with ``requests`` copies of its one request (``--buyers``)."""
    if len(recipe.requests) != 1:
        raise CatalogueError(
            "this scenario's race mixes several requests, so its count cannot be set"
        )
    only = recipe.requests[0].model_copy(update={"count": requests})
    return recipe.model_copy(update={"requests": (only,)})


def _request(
    base_url: str, call: CallInfo, strategy: str, extra: tuple[tuple[str, str], ...] = ()
) -> RaceRequest:
    headers = tuple(call.headers.items()) + extra
    body = b""
    if call.json_body is not None:
        body = json.dumps(call.json_body).encode()
        headers = (("Content-Type", "application/json"), *headers)
    return RaceRequest(
        base_url + call.path.replace("{strategy}", strategy),
        call.method,
        headers,
        body,
        call.offset_ms if isinstance(call, RequestInfo) else 0.0,
    )


def recipe_plan(
    base_url: str,
    recipe: RecipeInfo,
    strategy: str,
    *,
    window_ms: float | None = None,
    technique: Technique = "auto",
    rounds: int = 1,
    race_url: str | None = None,
    **options: Any,
) -> RacePlan:
    """The engine's plan for ``recipe`` against ``strategy``: its requests (with
    ``X-Race-Window-Ms`` when ``window_ms`` is given), its reset before every round, its probe
    and success rule. The race goes to ``race_url`` when given (e.g. through a proxy), the reset
    and probe always to ``base_url``. ``options`` go to ``RacePlan`` (``gate_wait_ms``, ...)."""
    window = (("X-Race-Window-Ms", f"{window_ms:g}"),) if window_ms is not None else ()
    requests = tuple(
        _request(race_url or base_url, r, strategy, window)
        for r in recipe.requests
        for _ in range(r.count)
    )
    probe = recipe.probe
    oracle = Oracle(
        success=SuccessRule(statuses=recipe.success_statuses),
        expect_max_successes=recipe.expect_max_successes,
        reset=_request(base_url, recipe.reset, strategy),
        probe=Probe(_request(base_url, probe, strategy), probe.json_path, probe.unit)
        if probe
        else None,
    )
    return RacePlan(requests=requests, technique=technique, rounds=rounds, oracle=oracle, **options)
