"""The payment scenario: one charge sent many times with one Idempotency-Key (a retried or
duplicated request), which must charge once."""

from __future__ import annotations

from toctou.lab.scenario import Probe, Recipe, RecipeCall, RecipeRequest, Scenario
from toctou.lab.scenarios.payment.ledger import INVARIANTS, audit, reset, seed
from toctou.lab.scenarios.payment.routes import router
from toctou.lab.scenarios.payment.strategies import STRATEGIES

__all__ = ["SCENARIO"]

RACE_KEY = "order-1001-attempt"

SCENARIO = Scenario(
    name="payment",
    title="The impatient checkout: one payment, sent ten times",
    damage="double spend by a retried or duplicated request",
    damage_unit="duplicate charges",
    summary="A client retries a charge with the same Idempotency-Key while the first is still "
    "running; unless the key is claimed in the charge's own transaction, every copy charges.",
    router=router,
    strategies=STRATEGIES,
    invariants=INVARIANTS,
    race=Recipe(
        summary="ten charges of 10.00 to account 1, all with one Idempotency-Key",
        requests=(
            RecipeRequest(
                "POST",
                "/payment/{strategy}/charge",
                json={"account_id": 1, "amount_cents": 1000},
                headers={"Idempotency-Key": RACE_KEY},
                count=10,
            ),
        ),
        reset=RecipeCall("POST", "/lab/reset", json={"scenario": "payment"}),
        probe=Probe("GET", "/lab/audit?scenario=payment", json_path="$.damage", unit=0),
        success_statuses=(201,),
    ),
    seed=seed,
    reset=reset,
    audit=audit,
)
