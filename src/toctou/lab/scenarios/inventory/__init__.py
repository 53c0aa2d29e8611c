"""The inventory scenario: one item with limited stock, bought by many at once (the seed's)."""

from __future__ import annotations

from fastapi import APIRouter

from toctou.lab.scenario import Probe, Recipe, RecipeCall, RecipeRequest, Scenario
from toctou.lab.scenarios.inventory import legacy, routes
from toctou.lab.scenarios.inventory.ledger import INVARIANTS, audit, reset, seed
from toctou.lab.scenarios.inventory.schemas import AuditScope, ResetScope
from toctou.lab.scenarios.inventory.strategies import STRATEGIES

__all__ = ["SCENARIO"]

router = APIRouter()
router.include_router(routes.router)
router.include_router(legacy.router)

SCENARIO = Scenario(
    name="inventory",
    title="The last GPU: ten buyers, one unit",
    damage="inventory overselling",
    damage_unit="units sold that the stock did not have",
    summary="Buyers check the stock, then take it; between the two, everyone else checks too.",
    router=router,
    strategies=STRATEGIES,
    invariants=INVARIANTS,
    race=Recipe(
        summary="ten purchases of the one unit of item 1",
        requests=(
            RecipeRequest("POST", "/inventory/{strategy}/purchase", json={"item_id": 1}, count=10),
        ),
        reset=RecipeCall("POST", "/lab/reset", json={"scenario": "inventory"}),
        probe=Probe("GET", "/inventory/items/1", json_path="$.stock", unit=-1),
        success_statuses=(201,),
        expect_max_successes=1,
    ),
    seed=seed,
    reset_scope=ResetScope,
    reset=reset,
    audit_scope=AuditScope,
    audit=audit,
)
