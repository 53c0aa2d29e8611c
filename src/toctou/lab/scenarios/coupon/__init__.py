"""The coupon scenario: a code good for one use, redeemed from ten checkouts at once."""

from __future__ import annotations

from toctou.lab.scenario import Probe, Recipe, RecipeCall, RecipeRequest, Scenario
from toctou.lab.scenarios.coupon.ledger import INVARIANTS, SEED_CODE, audit, reset, seed
from toctou.lab.scenarios.coupon.routes import router
from toctou.lab.scenarios.coupon.schemas import AuditScope, ResetScope
from toctou.lab.scenarios.coupon.strategies import STRATEGIES

__all__ = ["SCENARIO"]

SCENARIO = Scenario(
    name="coupon",
    title="WELCOME10: one use, ten checkouts",
    damage="limit overrun",
    damage_unit="redemptions beyond the limit or missing from the uses counter",
    summary="Checkouts read how often a code was used, then count one more use; between the "
    "two, every other checkout reads the same count and redeems too.",
    router=router,
    strategies=STRATEGIES,
    invariants=INVARIANTS,
    race=Recipe(
        summary=f"ten redemptions of {SEED_CODE} (limit 1) for one order",
        requests=(
            RecipeRequest(
                "POST",
                "/coupon/{strategy}/redeem",
                json={"code": SEED_CODE, "order_ref": "order-1"},
                count=10,
            ),
        ),
        reset=RecipeCall("POST", "/lab/reset", json={"scenario": "coupon"}),
        probe=Probe("GET", "/lab/audit?scenario=coupon", json_path="$.damage", unit=0),
        success_statuses=(201,),
        expect_max_successes=1,
    ),
    seed=seed,
    reset_scope=ResetScope,
    reset=reset,
    audit_scope=AuditScope,
    audit=audit,
)
