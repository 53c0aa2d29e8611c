"""The login scenario: a burst of password guesses against a limit of 5 failures per window."""

from __future__ import annotations

from toctou.lab.scenario import Probe, Recipe, RecipeCall, RecipeRequest, Scenario
from toctou.lab.scenarios.login.ledger import INVARIANTS, audit, reset, seed
from toctou.lab.scenarios.login.policy import LIMIT, SEED_USERNAME
from toctou.lab.scenarios.login.routes import router
from toctou.lab.scenarios.login.schemas import ResetScope
from toctou.lab.scenarios.login.strategies import STRATEGIES

__all__ = ["SCENARIO"]

SCENARIO = Scenario(
    name="login",
    title="Five guesses, then a lock-out: twenty guesses at once",
    damage="rate-limit bypass",
    damage_unit="password checks over the limit",
    summary="A login allows 5 failed passwords per account per 15 minutes; sent in one burst, "
    "every guess reads the count before any has written its failure.",
    router=router,
    strategies=STRATEGIES,
    invariants=INVARIANTS,
    race=Recipe(
        summary=f"twenty wrong passwords for {SEED_USERNAME!r} at once",
        requests=(
            RecipeRequest(
                "POST",
                "/login/{strategy}/login",
                json={"username": SEED_USERNAME, "password": "guess"},
                count=20,
            ),
        ),
        reset=RecipeCall("POST", "/lab/reset", json={"scenario": "login"}),
        probe=Probe("GET", "/lab/audit?scenario=login", json_path="$.damage", unit=0),
        success_statuses=(401,),
        expect_max_successes=LIMIT,
    ),
    seed=seed,
    reset_scope=ResetScope,
    reset=reset,
    audit=audit,
)
