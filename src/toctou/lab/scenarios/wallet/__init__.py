"""The wallet scenario: integer-cent balances spent twice at once (double spend), and
transfers that must conserve money and never deadlock."""

from __future__ import annotations

from toctou.lab.scenario import Probe, Recipe, RecipeCall, RecipeRequest, Scenario
from toctou.lab.scenarios.wallet.ledger import INVARIANTS, audit, reset, seed
from toctou.lab.scenarios.wallet.routes import router
from toctou.lab.scenarios.wallet.schemas import AuditScope, ResetScope
from toctou.lab.scenarios.wallet.strategies import STRATEGIES

__all__ = ["SCENARIO"]

_RESET = RecipeCall("POST", "/lab/reset", json={"scenario": "wallet"})


def _transfer(source: int, target: int, count: int) -> RecipeRequest:
    body = {"from_account": source, "to_account": target, "amount_cents": 1000}
    return RecipeRequest("POST", "/wallet/{strategy}/transfer", json=body, count=count)


SCENARIO = Scenario(
    name="wallet",
    title="One balance, ten withdrawals: the double spend",
    damage="double spend and negative wallet balances",
    damage_unit="cents overdrawn, or created or lost by overwritten writes",
    summary="Clients check the balance, then debit it; between the two, everyone else checks "
    "too. Transfers must also conserve money and lock both accounts without deadlocking.",
    router=router,
    strategies=STRATEGIES,
    invariants=INVARIANTS,
    race=Recipe(
        summary="ten withdrawals of the whole balance (1000 cents) of account 1",
        requests=(
            RecipeRequest(
                "POST",
                "/wallet/{strategy}/withdraw",
                json={"account_id": 1, "amount_cents": 1000},
                count=10,
            ),
        ),
        reset=_RESET,
        probe=Probe("GET", "/wallet/accounts/1", json_path="$.balance_cents", unit=-1000),
        success_statuses=(201,),
        expect_max_successes=1,
    ),
    more_races={
        "transfer": Recipe(
            summary="five transfers of 1000 cents 1 -> 2 and five 2 -> 1 at once, both "
            "accounts at 1000: money must be conserved and nothing may deadlock",
            requests=(_transfer(1, 2, 5), _transfer(2, 1, 5)),
            reset=_RESET,
            probe=Probe("GET", "/lab/audit?scenario=wallet", json_path="$.damage", unit=0),
            success_statuses=(201,),
        ),
    },
    seed=seed,
    reset_scope=ResetScope,
    reset=reset,
    audit_scope=AuditScope,
    audit=audit,
)
