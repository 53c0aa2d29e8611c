"""The cart scenario: items added while the checkout is being paid (a multi-endpoint race)."""

from __future__ import annotations

from toctou.lab.scenario import Probe, Recipe, RecipeCall, RecipeRequest, Scenario
from toctou.lab.scenarios.cart.ledger import INVARIANTS, audit, reset, seed
from toctou.lab.scenarios.cart.routes import router
from toctou.lab.scenarios.cart.strategies import STRATEGIES

__all__ = ["SCENARIO"]

SCENARIO = Scenario(
    name="cart",
    title="The sock that shipped for free: adding to a cart while it is paid",
    damage="multi-endpoint race",
    damage_unit="cents shipped but not paid, or paid but not shipped",
    summary="Checkout sums the cart and calls the payment gateway; items added meanwhile are "
    "in the cart when it ships, but not in the amount charged.",
    router=router,
    strategies=STRATEGIES,
    invariants=INVARIANTS,
    race=Recipe(
        summary="one checkout of cart 1 and nine socks added to it at the same moment",
        requests=(
            RecipeRequest("POST", "/cart/{strategy}/checkout", json={"cart_id": 1}),
            RecipeRequest(
                "POST",
                "/cart/{strategy}/items",
                json={"cart_id": 1, "sku": "sock", "price_cents": 500},
                count=9,
            ),
        ),
        reset=RecipeCall("POST", "/lab/reset", json={"scenario": "cart"}),
        probe=Probe("GET", "/lab/audit?scenario=cart", json_path="$.damage", unit=0),
        success_statuses=(201,),
    ),
    seed=seed,
    reset=reset,
    audit=audit,
)
