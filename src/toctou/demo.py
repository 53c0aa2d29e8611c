"""The seed's story as data, for any scenario: its race recipe, vulnerable against its best fixes,
at two race windows.

``run_demo`` talks to a running lab over HTTP only: it reads the scenario from the lab's catalogue
(``GET /scenarios``), sends each burst with the race engine and reads the lab's audit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from toctou.catalogue import (
    CatalogueError,
    RecipeInfo,
    ScenarioInfo,
    StrategyInfo,
    fetch_catalogue,
    recipe_plan,
    scale_recipe,
)
from toctou.engine import RaceResult, arun_race

__all__ = [
    "DEMO_SCENARIO",
    "DEMO_WINDOWS_MS",
    "DemoResult",
    "demo_strategies",
    "run_demo",
]

DEMO_SCENARIO = "inventory"  # the seed's: ten buyers, one GPU
DEMO_WINDOWS_MS = (100.0, 0.0)  # the seed's sleep, and none at all
BEST_FIXES = 2  # how many fixes the demo shows beside the vulnerable strategy


@dataclass(frozen=True, slots=True)
class DemoResult:
    scenario: str
    title: str
    strategy: str
    claimed_safe: str
    """Where the catalogue says the strategy holds, in words."""
    claimed_to_fail: bool
    """The catalogue says it fails on SQLite with one worker: what the demo runs."""
    holds_everywhere: bool
    """The catalogue says it holds on every backend with any number of workers."""
    window_ms: float
    technique: str
    protocol: str
    requests: int
    successes: int
    success_statuses: tuple[int, ...]
    effects: int
    """Distinct effects the successful answers name (fewer than successes: some were replays)."""
    expect_max_successes: int | None
    rejected: int
    errors: int
    probe_path: str | None
    probe_unit: float | None
    probe_before: float | None
    probe_after: float | None
    damage: int
    damage_unit: str
    audit_holds: bool
    violations: tuple[str, ...]
    arrival_spread_ms: float | None
    admission_limit: int | None = None
    """Database requests the lab's worker runs at once (its /health says); more wait."""

    @property
    def race_type(self) -> str | None:
        """How the race shows in the probed state, named as the seed names it."""
        if self.audit_holds:
            return None
        before, after, unit = self.probe_before, self.probe_after, self.probe_unit
        if before is None or after is None or not unit:
            return None
        if after < 0:
            return "Negative Balance"
        if after - before != self.successes * unit:
            return "Lost Update"
        return "Oversell"


def demo_strategies(scenario: ScenarioInfo) -> list[str]:
    """The vulnerable strategy first, then the first fixes the catalogue says hold everywhere
    without errors (inventory: atomic and lock)."""
    vulnerable = [s.name for s in scenario.strategies if s.never_holds][:1]
    fixes = [s.name for s in scenario.strategies if _clean_fix(s)][:BEST_FIXES]
    return vulnerable + fixes


def _clean_fix(strategy: StrategyInfo) -> bool:
    return strategy.holds_everywhere and strategy.errors is None


async def run_demo(
    base_url: str,
    *,
    scenario: str = DEMO_SCENARIO,
    requests: int | None = None,
    strategies: Sequence[str] = (),
    windows_ms: Sequence[float] = DEMO_WINDOWS_MS,
) -> list[DemoResult]:
    """For each window and strategy: reset, race the recipe once, read the scenario's audit."""
    catalogue = fetch_catalogue(base_url)
    if scenario not in catalogue:
        raise CatalogueError(f"no scenario {scenario!r}; valid: {', '.join(catalogue)}")
    info = catalogue[scenario]
    recipe = info.race if requests is None else scale_recipe(info.race, requests)
    chosen = [info.strategy(name) for name in (strategies or demo_strategies(info))]
    results = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        limit = (await client.get("/health")).json().get("admission_limit")
        for window_ms in windows_ms:
            for strategy in chosen:
                plan = recipe_plan(base_url, recipe, strategy.name, window_ms=window_ms)
                race = await arun_race(plan)
                reply = await client.get("/lab/audit", params={"scenario": scenario})
                audit = reply.raise_for_status().json()["scenarios"][scenario]
                result = _result(info, strategy, recipe, window_ms, race, audit)
                results.append(replace(result, admission_limit=limit))
    return results


def _effect(body: str) -> str | None:
    try:
        named = json.loads(body).get("effect")
    except (ValueError, AttributeError):
        return None
    return named if isinstance(named, str) else None


def _result(
    info: ScenarioInfo,
    strategy: StrategyInfo,
    recipe: RecipeInfo,
    window_ms: float,
    race: RaceResult,
    audit: dict[str, Any],
) -> DemoResult:
    round_ = race.rounds[0]
    spread = round_.arrival_spread
    probe = recipe.probe
    return DemoResult(
        scenario=info.name,
        title=info.title,
        strategy=strategy.name,
        claimed_safe=strategy.safe,
        claimed_to_fail=not strategy.holds_with("sqlite", 1),
        holds_everywhere=strategy.holds_everywhere,
        window_ms=window_ms,
        technique=race.technique,
        protocol=race.protocol,
        requests=len(round_.attempts),
        successes=round_.successes,
        success_statuses=recipe.success_statuses,
        effects=len({e for a in round_.attempts if a.success and (e := _effect(a.body))}),
        expect_max_successes=recipe.expect_max_successes,
        rejected=sum(
            a.status is not None and 400 <= a.status < 500 and not a.success
            for a in round_.attempts
        ),
        errors=round_.errors,
        probe_path=f"{probe.path} {probe.json_path}" if probe else None,
        probe_unit=probe.unit if probe else None,
        probe_before=round_.probe_before,
        probe_after=round_.probe_after,
        damage=int(audit["damage"]),
        damage_unit=info.damage_unit,
        audit_holds=bool(audit["holds"]),
        violations=tuple(v for i in audit["invariants"] for v in i["violations"]),
        arrival_spread_ms=spread.range_ns / 1e6 if spread else None,
    )
