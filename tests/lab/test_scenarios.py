"""Every scenario x strategy x backend, with one worker and four, raced from the catalogue itself.

Nothing here names a scenario, a route or a strategy: the expectations come from each strategy's
``holds`` claim in ``GET /scenarios`` and the requests from its race recipes, so a wrong claim or
a recipe that cannot show its race fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import BACKENDS, redis_url, require_redis, start_lab
from tests.lab.helpers import audit_scenario
from toctou.catalogue import RecipeInfo, ScenarioInfo, StrategyInfo, fetch_catalogue, recipe_plan
from toctou.engine import RaceResult, run_race
from toctou.lab.process import LabProcess
from toctou.lab.scenarios import SCENARIOS

ROUNDS_TO_SHOW = 5  # rounds a racy strategy gets to show damage (4 workers: connections must
# spread over at least two of them for a process-local lock to fail)

CASES = [
    pytest.param(scenario.name, strategy, id=f"{scenario.name}-{strategy}")
    for scenario in SCENARIOS.values()
    for strategy in scenario.strategies
]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def lab(backend: str, request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    yield from start_lab(backend, request.param)


@pytest.fixture(scope="module")
def catalogue(lab: LabProcess) -> dict[str, ScenarioInfo]:
    return fetch_catalogue(lab.base_url)


def race_round(
    lab: LabProcess, scenario: str, recipe: RecipeInfo, strategy: str, window_ms: float
) -> tuple[RaceResult, dict[str, Any]]:
    """One round of the recipe (the recipe's reset first), then the scenario's audit."""
    plan = recipe_plan(
        lab.base_url, recipe, strategy, window_ms=window_ms, technique="last-byte", gate_wait_ms=20
    )
    result = run_race(plan)
    assert result.rounds, result.verdict.summary
    assert result.rounds[0].reset_error is None, result.verdict.summary
    return result, audit_scenario(lab, scenario)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def check_answers(result: RaceResult, audit: dict[str, Any], claim: StrategyInfo) -> None:
    """Every request was answered; every 2xx names the one effect it had; the audit counts
    exactly the effects the answers name (a replayed answer names its original's)."""
    attempts = result.rounds[0].attempts
    if claim.errors is None:
        assert [a.error for a in attempts if a.error] == []
        assert [a.status for a in attempts if (a.status or 0) >= 500] == []
    effects = set()
    for a in attempts:
        body = _json(a.body)
        if a.status is not None and 200 <= a.status < 300:
            assert isinstance(body, dict), a.body
            assert "effect" in body, a.body
        if isinstance(body, dict) and "effect" in body:
            effects.add(body["effect"])
    assert len(effects) == audit["effects"], (sorted(effects), audit)


def check_without_redis(lab: LabProcess, scenario: str, recipe: RecipeInfo, strategy: str) -> None:
    """A strategy that needs Redis, on a lab without one: every request answers 503
    ``redis_unavailable`` in the error shape, and nothing changes."""
    result, audit = race_round(lab, scenario, recipe, strategy, recipe.window_ms)
    answers = {(a.status, (_json(a.body) or {}).get("error")) for a in result.rounds[0].attempts}
    assert answers == {(503, "redis_unavailable")}, answers
    assert (audit["damage"], audit["effects"]) == (0, 0), audit


@pytest.mark.parametrize(("scenario", "strategy"), CASES)
def test_strategy_does_what_the_catalogue_claims(
    lab: LabProcess,
    backend: str,
    catalogue: dict[str, ScenarioInfo],
    scenario: str,
    strategy: str,
) -> None:
    info = catalogue[scenario]
    claim = info.strategy(strategy)
    holds = claim.holds_with(backend, lab.workers)
    if "redis" in claim.needs:
        if redis_url() is None:  # the labs got none: the claim cannot be checked, the 503 can
            for recipe in info.recipes().values():
                check_without_redis(lab, scenario, recipe, strategy)
        require_redis()
    for name, recipe in info.recipes().items():
        if holds:
            for window_ms in (0, recipe.window_ms):  # the recipe's: racy ones show it
                result, audit = race_round(lab, scenario, recipe, strategy, window_ms)
                check_answers(result, audit, claim)
                assert audit["damage"] == 0, (name, window_ms, audit)
                assert audit["holds"], (name, window_ms, audit)
                assert result.verdict.outcome != "race", (name, window_ms, result.verdict)
            continue
        for _round in range(ROUNDS_TO_SHOW):
            result, audit = race_round(lab, scenario, recipe, strategy, recipe.window_ms)
            check_answers(result, audit, claim)
            if audit["damage"]:
                break
        assert audit["damage"] > 0, (name, audit)
        assert not audit["holds"], (name, audit)
        assert result.verdict.outcome == "race", (name, result.verdict)
