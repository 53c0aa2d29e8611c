"""The catalogue: every registered scenario described, its recipes' routes real, reset and audit
over all of them, and bad scenario names refused without changing anything."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.conftest import redis_url
from toctou.catalogue import fetch_catalogue, recipe_plan
from toctou.lab.process import LabProcess
from toctou.lab.scenario import BACKENDS
from toctou.lab.scenarios import PACKAGES, SCENARIOS

NAMES = list(SCENARIOS)


def test_the_registry_lists_every_package_once() -> None:
    assert list(PACKAGES) == NAMES
    assert NAMES[0] == "inventory"  # the seed's, where bodies without a scenario go


@pytest.mark.parametrize("name", NAMES)
def test_each_scenario_record_is_complete(name: str) -> None:
    scenario = SCENARIOS[name]
    assert scenario.title
    assert scenario.summary
    assert scenario.damage
    assert scenario.damage_unit
    assert scenario.invariants
    assert all(scenario.invariants.values())
    for strategy in scenario.strategies.values():
        assert re.fullmatch(r"[a-z][a-z0-9-]*", strategy.name), strategy.name
        assert strategy.summary, f"{name}/{strategy.name} needs a docstring"
        assert strategy.holds.why, f"{name}/{strategy.name} needs a why"
        assert {strategy.holds.on(b) for b in BACKENDS} <= {"always", "one-worker", "never"}
    claims = {strategy.holds.on(b) for s in [scenario] for strategy in s.strategies.values()
              for b in BACKENDS}  # fmt: skip
    assert "never" in claims, "every scenario teaches with at least one racy strategy"
    assert "always" in claims, "and at least one fix"
    for recipe in (scenario.race, *scenario.more_races.values()):
        assert any("{strategy}" in r.path for r in recipe.requests)
        assert recipe.success_statuses


def test_get_scenarios_lists_the_registry(sqlite_lab: LabProcess) -> None:
    catalogue = fetch_catalogue(sqlite_lab.base_url)
    assert list(catalogue) == NAMES
    for name, info in catalogue.items():
        record = SCENARIOS[name]
        assert [s.name for s in info.strategies] == list(record.strategies)
        assert [i["name"] for i in info.invariants] == list(record.invariants)
        for strategy in info.strategies:
            claim = record.strategies[strategy.name].holds
            assert strategy.holds == {b: claim.on(b) for b in BACKENDS}
            assert strategy.safe
        one = httpx.get(f"{sqlite_lab.base_url}/scenarios/{name}").json()
        assert one["name"] == name
        assert set(one["race"]) >= {"requests", "reset", "probe", "success_statuses"}


def test_an_unknown_scenario_is_404_naming_the_valid_ones(sqlite_lab: LabProcess) -> None:
    base = sqlite_lab.base_url
    before = httpx.get(f"{base}/lab/audit").json()
    for reply in (
        httpx.get(f"{base}/scenarios/nope"),
        httpx.post(f"{base}/lab/reset", json={"scenario": "nope"}),
        httpx.get(f"{base}/lab/audit", params={"scenario": "nope"}),
    ):
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"] == "unknown_scenario"
        assert reply.json()["valid"] == NAMES
    assert httpx.get(f"{base}/lab/audit").json() == before


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def test_every_route_a_recipe_names_is_in_openapi(sqlite_lab: LabProcess) -> None:
    spec = httpx.get(f"{sqlite_lab.base_url}/openapi.json").json()
    routes = [(_template(path), method.upper()) for path, ops in spec["paths"].items() for method
              in ops]  # fmt: skip
    for name, info in fetch_catalogue(sqlite_lab.base_url).items():
        for recipe in info.recipes().values():
            calls = [*recipe.requests, recipe.reset, *([recipe.probe] if recipe.probe else [])]
            for call in calls:
                path = call.path.split("?")[0].replace("{strategy}", "vulnerable")
                assert any(t.match(path) and m == call.method for t, m in routes), (name, call)


def test_a_recipe_becomes_a_plan_with_its_requests_reset_and_probe(
    sqlite_lab: LabProcess,
) -> None:
    for info in fetch_catalogue(sqlite_lab.base_url).values():
        for recipe in info.recipes().values():
            plan = recipe_plan(sqlite_lab.base_url, recipe, "atomic", window_ms=5)
            assert len(plan.requests) == sum(r.count for r in recipe.requests)
            assert all("{strategy}" not in r.url for r in plan.requests)
            assert all(r.header("X-Race-Window-Ms") == "5" for r in plan.requests)
            assert plan.oracle.reset is not None
            assert (plan.oracle.probe is not None) == (recipe.probe is not None)
            assert plan.oracle.success.statuses == recipe.success_statuses


def _audit(lab: LabProcess, **params: str) -> dict[str, Any]:
    reply = httpx.get(f"{lab.base_url}/lab/audit", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_reset_all_and_audit_all(sqlite_lab: LabProcess) -> None:
    reply = httpx.post(f"{sqlite_lab.base_url}/lab/reset", json={})
    assert reply.status_code == 200, reply.text
    assert reply.json()["reset"] == NAMES
    report = _audit(sqlite_lab)
    assert list(report["scenarios"]) == NAMES
    assert report["holds"] is True
    assert report["damage"] == 0
    for name, found in report["scenarios"].items():
        assert [i["name"] for i in found["invariants"]] == list(SCENARIOS[name].invariants)
        assert found["damage"] == 0
        assert found["effects"] == 0
        assert found["damage_unit"] == SCENARIOS[name].damage_unit
    for name in NAMES:
        one = _audit(sqlite_lab, scenario=name)
        assert list(one["scenarios"]) == [name]
        again = httpx.post(f"{sqlite_lab.base_url}/lab/reset", json={"scenario": name})
        assert again.json()["reset"] == [name]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/lab/reset", {"json": {"scenario": "inventory", "colour": "red"}}),
        ("POST", "/lab/reset", {"json": {"scenario": 7}}),
        ("POST", "/lab/reset", {"json": {"scenario": "inventory", "stock": -1}}),
        ("GET", "/lab/audit", {"params": {"scenario": "inventory", "colour": "red"}}),
        ("GET", "/lab/audit", {"params": {"colour": "red"}}),
    ],
)
def test_fields_a_scenario_does_not_take_are_422_and_change_nothing(
    sqlite_lab: LabProcess, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    before = _audit(sqlite_lab)
    reply = httpx.request(method, f"{sqlite_lab.base_url}{path}", **kwargs)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"
    assert _audit(sqlite_lab) == before


def test_strategies_lists_every_scenario(sqlite_lab: LabProcess) -> None:
    listed = httpx.get(f"{sqlite_lab.base_url}/strategies").json()
    assert [(s["scenario"], s["name"]) for s in listed] == [
        (name, strategy) for name in NAMES for strategy in SCENARIOS[name].strategies
    ]


WINDOW_S = 0.15


@pytest.mark.parametrize("name", NAMES)
def test_the_race_window_delays_every_strategy_of_every_recipe(
    sqlite_lab: LabProcess, name: str
) -> None:
    """The first request of a recipe, sent alone after its reset, passes its check and then waits
    out ``X-Race-Window-Ms`` before it commits (a lower bound: a sleep never ends early)."""
    info = fetch_catalogue(sqlite_lab.base_url)[name]
    for strategy in info.strategies:
        if "redis" in strategy.needs and redis_url() is None:
            continue  # the lab has no Redis: test_scenarios checks these answer 503
        for recipe in info.recipes().values():
            plan = recipe_plan(
                sqlite_lab.base_url, recipe, strategy.name, window_ms=WINDOW_S * 1000
            )
            reset = plan.oracle.reset
            assert reset is not None
            httpx.request(reset.method, reset.url, content=reset.body, headers=reset.headers)
            first = plan.requests[0]
            started = time.perf_counter()
            reply = httpx.request(
                first.method, first.url, content=first.body, headers=first.headers
            )
            took = time.perf_counter() - started
            assert reply.status_code in recipe.success_statuses, (strategy.name, reply.text)
            assert took >= WINDOW_S, (strategy.name, took)


def test_an_empty_scenario_name_is_refused_not_read_as_all(sqlite_lab: LabProcess) -> None:
    base = sqlite_lab.base_url
    before = _audit(sqlite_lab)
    assert httpx.post(f"{base}/lab/reset", json={"scenario": ""}).status_code == 422
    empty = httpx.get(f"{base}/lab/audit", params={"scenario": ""})
    assert empty.status_code == 404, empty.text
    assert empty.json()["error"] == "unknown_scenario"
    assert _audit(sqlite_lab) == before


def test_openapi_documents_the_lab_error_shape_and_every_audit_parameter(
    sqlite_lab: LabProcess,
) -> None:
    spec = httpx.get(f"{sqlite_lab.base_url}/openapi.json").json()
    assert "HTTPValidationError" not in str(spec)
    assert [name for name in spec["components"]["schemas"] if "__" in name] == []
    documented = {p["name"] for p in spec["paths"]["/lab/audit"]["get"]["parameters"]}
    for scenario in SCENARIOS.values():
        assert set(scenario.audit_scope.model_fields) <= documented, scenario.name
