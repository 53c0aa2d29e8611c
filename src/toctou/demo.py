"""The seed's story as data: ten buyers, one GPU, three strategies.

``run_demo`` talks to a running lab over HTTP only. How the ten purchases are sent is one function
(``send``), so the race engine can take over from :mod:`toctou.burst` without touching the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from toctou.burst import Reply, Shot, afire

__all__ = ["DEMO_STRATEGIES", "DemoResult", "run_demo"]

DEMO_STRATEGIES = ("vulnerable", "atomic", "lock")
Send = Callable[[str, Sequence[Shot]], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class DemoResult:
    strategy: str
    buyers: int
    starting_stock: int
    successes: int
    rejected: int
    errors: int
    final_stock: int
    units_sold: int
    audit_holds: bool
    violations: tuple[str, ...]

    @property
    def race_type(self) -> str | None:
        """How the race shows in the data, named as the seed names it."""
        if self.audit_holds:
            return None
        if self.final_stock < 0:
            return "Negative Balance"
        if self.final_stock + self.units_sold != self.starting_stock:
            return "Lost Update"
        return "Oversell"


async def run_demo(
    base_url: str,
    *,
    buyers: int = 10,
    stock: int = 1,
    strategies: Sequence[str] = DEMO_STRATEGIES,
    send: Send = afire,
) -> list[DemoResult]:
    """Reset, fire ``buyers`` concurrent purchases per strategy, and audit the result."""
    results = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for strategy in strategies:
            (
                await client.post("/lab/reset", json={"item_id": 1, "stock": stock})
            ).raise_for_status()
            shots = [
                Shot(
                    "POST", f"/inventory/{strategy}/purchase", {"item_id": 1, "buyer": f"buyer-{i}"}
                )
                for i in range(buyers)
            ]
            replies = await send(base_url, shots)
            audit = (
                (await client.get("/lab/audit", params={"item_id": 1})).raise_for_status().json()
            )
            item = audit["items"][0]
            results.append(
                DemoResult(
                    strategy=strategy,
                    buyers=buyers,
                    starting_stock=stock,
                    successes=sum(r.ok for r in replies),
                    rejected=sum(r.status == 409 for r in replies),
                    errors=sum(not r.ok and r.status != 409 for r in replies),
                    final_stock=item["stock"],
                    units_sold=item["units_sold"],
                    audit_holds=audit["holds"],
                    violations=tuple(v for i in audit["invariants"] for v in i["violations"]),
                )
            )
    return results
