"""Lab control, audit and catalogue: reset, check the invariants, list the scenarios, liveness.

Every route here loops over the registry (``toctou.lab.scenarios.SCENARIOS``) and names no
scenario itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.catalogue import describe_scenario, describe_strategy
from toctou.lab.deps import AdminDep, LabDep
from toctou.lab.scenario import Scenario
from toctou.lab.scenarios import SCENARIOS, get_scenario
from toctou.lab.schemas import (
    ADMISSION_RESPONSES,
    AuditOut,
    ErrorOut,
    HealthOut,
    InvariantOut,
    ResetIn,
    ResetOut,
    ScenarioAuditOut,
    ScenarioOut,
    StrategyOut,
)

__all__ = ["DATABASE_FREE_PATHS", "router"]

router = APIRouter(tags=["lab"])
DEFAULT_SCENARIO = next(iter(SCENARIOS))  # where fields without a scenario go (the seed's)
DATABASE_FREE_PATHS = frozenset(
    {
        "/",
        "/health",
        "/strategies",
        "/scenarios",
        *(f"/scenarios/{name}" for name in SCENARIOS),
        *(path for s in SCENARIOS.values() for path in s.database_free_paths),
    }
)


def _audit_parameters() -> list[dict[str, Any]]:
    """Every scenario's own audit parameters, for OpenAPI (the route reads them generically)."""
    found: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS.values():
        schema = scenario.audit_scope.model_json_schema()
        for field, spec in schema.get("properties", {}).items():
            entry = found.setdefault(
                field,
                {"name": field, "in": "query", "required": False, "schema": spec, "names": []},
            )
            entry["names"].append(scenario.name)
    return [
        {
            **{k: v for k, v in entry.items() if k != "names"},
            "description": "with scenario=" + " or ".join(entry["names"]) + ": narrows its audit",
        }
        for entry in found.values()
    ]


def _scope(model: type[BaseModel], fields: dict[str, Any], where: str) -> BaseModel:
    """Validate a scenario's own reset or audit fields; errors answer as any bad body does."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = (where, *error["loc"])
        raise RequestValidationError(errors) from None


@router.get("/")
async def index() -> dict[str, str]:
    """Where to go from here: the docs, the catalogue, the audit."""
    return {
        "service": "toctou lab: a deliberately vulnerable API (run it on loopback only)",
        "docs": "/docs",
        "openapi": "/openapi.json",
        "scenarios": "/scenarios",
        "strategies": "/strategies",
        "audit": "/lab/audit",
        "reset": "POST /lab/reset",
        "health": "/health",
    }


@router.get("/health")
async def health(lab: LabDep) -> HealthOut:
    """Liveness; touches no database, so it answers even while every connection is busy."""
    return HealthOut(
        worker=lab.worker,
        backend=lab.db.backend,
        database_version=lab.db.server_version,
        admission_limit=lab.settings.admission_limit,
    )


@router.get("/scenarios")
async def list_scenarios() -> list[ScenarioOut]:
    """Every scenario: its damage, strategies and where each holds, invariants and race recipe."""
    return [describe_scenario(s) for s in SCENARIOS.values()]


@router.get("/scenarios/{name}", responses={404: {"model": ErrorOut}})
async def read_scenario(name: str) -> ScenarioOut:
    """One scenario of the catalogue."""
    return describe_scenario(get_scenario(name))


class ScenarioStrategyOut(StrategyOut):
    scenario: str


@router.get("/strategies")
async def list_strategies() -> list[ScenarioStrategyOut]:
    """Every strategy of every scenario, what it does and where it holds."""
    return [
        ScenarioStrategyOut(scenario=s.name, **describe_strategy(strategy).model_dump())
        for s in SCENARIOS.values()
        for strategy in s.strategies.values()
    ]


async def _reset(session: AsyncSession, scenario: Scenario, fields: dict[str, Any]) -> BaseModel:
    return await scenario.reset(session, _scope(scenario.reset_scope, fields, "body"))


@router.post(
    "/lab/reset",
    responses={
        200: {
            "description": "ResetOut; or, for a body without `scenario` but with the first "
            'scenario\'s fields (`{"item_id": 1, "stock": 1}`), that scenario\'s state',
        },
        401: {"model": ErrorOut, "description": "bearer token required off loopback"},
        404: {"model": ErrorOut, "description": "unknown scenario (the valid ones are listed)"},
        422: {"model": ErrorOut, "description": "a field the scenario does not take, or bad"},
        **ADMISSION_RESPONSES,
    },
)
async def reset_lab(
    lab: LabDep, _admin: AdminDep, body: Annotated[ResetIn | None, Body()] = None
) -> ResetOut | dict[str, Any]:
    """Put one scenario (`{"scenario": NAME, ...}`) or every one (`{}`) back to its seed state."""
    wanted = body or ResetIn()
    fields = dict(wanted.model_extra or {})
    if wanted.scenario is None and fields:  # the seed's reset body: {"item_id": 1, "stock": 1}
        scenario = SCENARIOS[DEFAULT_SCENARIO]
        async with lab.db.sessions() as session, session.begin():
            return (await _reset(session, scenario, fields)).model_dump(mode="json")
    chosen = (
        [get_scenario(wanted.scenario)] if wanted.scenario is not None else list(SCENARIOS.values())
    )
    states: dict[str, dict[str, Any]] = {}
    async with lab.db.sessions() as session, session.begin():
        for scenario in chosen:
            state = await _reset(session, scenario, fields)
            states[scenario.name] = state.model_dump(mode="json")
    return ResetOut(reset=list(states), scenarios=states)


@router.get(
    "/lab/audit",
    openapi_extra={"parameters": _audit_parameters()},
    responses={
        404: {"model": ErrorOut, "description": "unknown scenario, or a row its scope names"},
        422: {"model": ErrorOut, "description": "a parameter the scenario does not take"},
        **ADMISSION_RESPONSES,
    },
)
async def audit_lab(lab: LabDep, request: Request, scenario: str | None = None) -> AuditOut:
    """Every invariant of every scenario (`?scenario=NAME` for one; its own parameters narrow
    it further, e.g. `?scenario=inventory&item_id=5`), whether it holds, and the damage done."""
    params = {k: v for k, v in request.query_params.items() if k != "scenario"}
    name = DEFAULT_SCENARIO if scenario is None and params else scenario
    chosen = [get_scenario(name)] if name is not None else list(SCENARIOS.values())
    audits: dict[str, ScenarioAuditOut] = {}
    async with lab.db.sessions() as session:
        for s in chosen:
            found = await s.audit(session, _scope(s.audit_scope, params, "query"))
            audits[s.name] = ScenarioAuditOut(
                holds=all(c.holds for c in found.checks),
                damage=found.damage,
                damage_unit=s.damage_unit,
                effects=found.effects,
                invariants=[
                    InvariantOut(
                        name=c.name,
                        description=s.invariants[c.name],
                        holds=c.holds,
                        violations=c.violations,
                    )
                    for c in found.checks
                ],
                state=found.state.model_dump(mode="json"),
            )
    return AuditOut(
        holds=all(a.holds for a in audits.values()),
        damage=sum(a.damage for a in audits.values()),
        scenarios=audits,
    )
