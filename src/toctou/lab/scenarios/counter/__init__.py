"""The counter scenario: likes on a post, one per user, counted in a column."""

from __future__ import annotations

from toctou.lab.scenario import Probe, Recipe, RecipeCall, RecipeRequest, Scenario
from toctou.lab.scenarios.counter.ledger import INVARIANTS, SEED_POST, audit, reset, seed
from toctou.lab.scenarios.counter.routes import router
from toctou.lab.scenarios.counter.schemas import AuditScope, ResetScope
from toctou.lab.scenarios.counter.strategies import STRATEGIES

__all__ = ["SCENARIO"]

_PATH = "/counter/{strategy}/like"
_OTHERS = ("bob", "cy", "dee", "eve", "fay")

SCENARIO = Scenario(
    name="counter",
    title="Likes: one per user, counted in a column",
    damage="data corruption (lost updates of a count, duplicate likes)",
    damage_unit="likes the counter lost plus duplicate likes",
    summary="Each like checks the user has not liked yet, then writes the like and count + 1; "
    "between the two, the other likes read the same count and the same 'not yet'.",
    router=router,
    strategies=STRATEGIES,
    invariants=INVARIANTS,
    race=Recipe(
        summary=f"ten likes of post {SEED_POST} at once: five from ada, one each from "
        f"{', '.join(_OTHERS)}",
        requests=(
            RecipeRequest("POST", _PATH, json={"post_id": SEED_POST, "user": "ada"}, count=5),
            *(
                RecipeRequest("POST", _PATH, json={"post_id": SEED_POST, "user": u})
                for u in _OTHERS
            ),
        ),
        reset=RecipeCall("POST", "/lab/reset", json={"scenario": "counter"}),
        probe=Probe("GET", "/lab/audit?scenario=counter", json_path="$.damage", unit=0),
        success_statuses=(201,),
        expect_max_successes=1 + len(_OTHERS),
    ),
    seed=seed,
    reset_scope=ResetScope,
    reset=reset,
    audit_scope=AuditScope,
    audit=audit,
)
