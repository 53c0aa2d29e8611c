"""The catalogue: every registered scenario as data, for ``GET /scenarios`` and its tools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toctou.lab.scenario import BACKENDS, Claim, Probe, Recipe, RecipeCall, Scenario, Strategy
from toctou.lab.schemas import (
    CallOut,
    ProbeOut,
    RecipeOut,
    RecipeRequestOut,
    ScenarioOut,
    StrategyOut,
)

__all__ = ["describe_claim", "describe_scenario", "describe_strategy"]


def describe_claim(claim: Claim) -> str:
    """The claim in words: "every backend", "PostgreSQL and MariaDB only", ..."""
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}
    by_holds: dict[str, list[str]] = {}
    for backend in BACKENDS:
        by_holds.setdefault(claim.on(backend), []).append(names[backend])
    if len(by_holds) == 1:
        holds = next(iter(by_holds))
        text = {
            "always": "every backend",
            "never": "nowhere",
            "one-worker": "one worker process only, on every backend",
        }[holds]
    else:
        text = "; ".join(f"{holds}: {', '.join(where)}" for holds, where in by_holds.items())
    return f"{text} ({claim.errors})" if claim.errors else text


def describe_strategy(strategy: Strategy[Any, Any]) -> StrategyOut:
    claim = strategy.holds
    return StrategyOut(
        name=strategy.name,
        summary=strategy.summary,
        holds={backend: claim.on(backend) for backend in BACKENDS},
        why=claim.why,
        errors=claim.errors,
        safe=describe_claim(claim),
        needs=list(strategy.needs),
    )


def _call(call: RecipeCall) -> dict[str, Any]:
    return {
        "method": call.method,
        "path": call.path,
        "json": dict(call.json) if call.json is not None else None,
        "headers": dict(call.headers),
    }


def _recipe(recipe: Recipe) -> RecipeOut:
    probe: Probe | None = recipe.probe
    return RecipeOut(
        summary=recipe.summary,
        requests=[
            RecipeRequestOut(**_call(r), count=r.count, offset_ms=r.offset_ms)
            for r in recipe.requests
        ],
        reset=CallOut(**_call(recipe.reset)),
        probe=ProbeOut(**_call(probe), json_path=probe.json_path, unit=probe.unit)
        if probe
        else None,
        success_statuses=list(recipe.success_statuses),
        expect_max_successes=recipe.expect_max_successes,
        window_ms=recipe.window_ms,
    )


def describe_scenario(scenario: Scenario) -> ScenarioOut:
    more: Mapping[str, Recipe] = scenario.more_races
    return ScenarioOut(
        name=scenario.name,
        title=scenario.title,
        damage=scenario.damage,
        damage_unit=scenario.damage_unit,
        summary=scenario.summary,
        strategies=[describe_strategy(s) for s in scenario.strategies.values()],
        invariants=[{"name": n, "description": d} for n, d in scenario.invariants.items()],
        race=_recipe(scenario.race),
        more_races={name: _recipe(r) for name, r in more.items()},
    )
