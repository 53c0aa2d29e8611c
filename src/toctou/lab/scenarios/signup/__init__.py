"""The sign-up scenario: one username, ten people registering it at once (duplicate rows)."""

from __future__ import annotations

from toctou.lab.scenario import Probe, Recipe, RecipeCall, RecipeRequest, Scenario
from toctou.lab.scenarios.signup.ledger import INVARIANTS, audit, reset, seed
from toctou.lab.scenarios.signup.routes import router
from toctou.lab.scenarios.signup.strategies import STRATEGIES

__all__ = ["SCENARIO"]

SCENARIO = Scenario(
    name="signup",
    title="One username, ten sign-ups at once",
    damage="data corruption: duplicate rows",
    damage_unit="duplicate rows",
    summary="Each sign-up checks that the name is free, then inserts it; between the two, "
    "everyone else finds it free too.",
    router=router,
    strategies=STRATEGIES,
    invariants=INVARIANTS,
    race=Recipe(
        summary="ten registrations of the username 'ada' at once",
        requests=(
            RecipeRequest(
                "POST",
                "/signup/{strategy}/register",
                json={"username": "ada", "email": "ada@example.org"},
                count=10,
            ),
        ),
        reset=RecipeCall("POST", "/lab/reset", json={"scenario": "signup"}),
        probe=Probe("GET", "/lab/audit?scenario=signup", json_path="$.damage", unit=0),
        success_statuses=(201,),
        expect_max_successes=1,
    ),
    seed=seed,
    reset=reset,
    audit=audit,
)
