"""The seed's story as data: ten buyers, one GPU, three strategies, two race windows.

``run_demo`` talks to a running lab over HTTP only, and sends each burst with the race engine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from toctou.engine import Oracle, Probe, RacePlan, RaceRequest, arun_race

__all__ = ["DEMO_STRATEGIES", "DEMO_WINDOWS_MS", "DemoResult", "run_demo"]

DEMO_STRATEGIES = ("vulnerable", "atomic", "lock")
DEMO_WINDOWS_MS = (100.0, 0.0)  # the seed's sleep, and none at all
_JSON = (("Content-Type", "application/json"),)


@dataclass(frozen=True, slots=True)
class DemoResult:
    strategy: str
    window_ms: float
    technique: str
    protocol: str
    buyers: int
    starting_stock: int
    successes: int
    rejected: int
    errors: int
    final_stock: int
    units_sold: int
    audit_holds: bool
    violations: tuple[str, ...]
    arrival_spread_ms: float | None

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


def _plan(base_url: str, strategy: str, window_ms: float, buyers: int, stock: int) -> RacePlan:
    item = 1
    return RacePlan.repeat(
        RaceRequest(
            f"{base_url}/inventory/{strategy}/purchase",
            "POST",
            (*_JSON, ("X-Race-Window-Ms", f"{window_ms:g}")),
            json.dumps({"item_id": item}).encode(),
        ),
        buyers,
        technique="auto",
        oracle=Oracle(
            expect_max_successes=stock,
            reset=RaceRequest(
                f"{base_url}/lab/reset",
                "POST",
                _JSON,
                json.dumps({"item_id": item, "stock": stock}).encode(),
            ),
            probe=Probe(RaceRequest(f"{base_url}/inventory/items/{item}"), "$.stock"),
        ),
    )


async def run_demo(
    base_url: str,
    *,
    buyers: int = 10,
    stock: int = 1,
    strategies: Sequence[str] = DEMO_STRATEGIES,
    windows_ms: Sequence[float] = DEMO_WINDOWS_MS,
) -> list[DemoResult]:
    """For each window and strategy: reset, race ``buyers`` purchases, and read the lab's audit."""
    results = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for window_ms in windows_ms:
            for strategy in strategies:
                race = await arun_race(_plan(base_url, strategy, window_ms, buyers, stock))
                audit = (await client.get("/lab/audit", params={"item_id": 1})).raise_for_status()
                report = audit.json()
                item = report["items"][0]
                round_ = race.rounds[0]
                spread = round_.arrival_spread
                results.append(
                    DemoResult(
                        strategy=strategy,
                        window_ms=window_ms,
                        technique=race.technique,
                        protocol=race.protocol,
                        buyers=buyers,
                        starting_stock=stock,
                        successes=round_.successes,
                        rejected=sum(a.status == 409 for a in round_.attempts),
                        errors=round_.errors,
                        final_stock=item["stock"],
                        units_sold=item["units_sold"],
                        audit_holds=report["holds"],
                        violations=tuple(v for i in report["invariants"] for v in i["violations"]),
                        arrival_spread_ms=spread.range_ns / 1e6 if spread else None,
                    )
                )
    return results
