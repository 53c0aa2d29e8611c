"""Real results to render: races of the lab's inventory from its catalogue, a race of a
hostile target, and a matrix made of them (until the matrix runner's own)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.engine.hostile import serve
from tests.report.hostile import HOSTILE_ERROR, HOSTILE_STRATEGY, hostile_app
from toctou.catalogue import fetch_catalogue, recipe_plan
from toctou.engine import Oracle, RacePlan, RaceRequest, RaceResult, Timeouts, run_race
from toctou.lab.process import LabProcess
from toctou.matrix.result import LabRun, MatrixCell, MatrixResult, MatrixRound, Throughput

WINDOW_MS = 50.0


def audit_state(lab: LabProcess) -> dict[str, Any]:
    reply = httpx.get(f"{lab.base_url}/lab/audit", params={"scenario": "inventory"}, timeout=10)
    state: dict[str, Any] = reply.raise_for_status().json()["scenarios"]["inventory"]["state"]
    return state


def race_inventory(lab: LabProcess, strategy: str, *, rounds: int) -> RaceResult:
    """The inventory's recipe (ten buyers, one unit) against ``strategy``, 50 ms window."""
    recipe = fetch_catalogue(lab.base_url)["inventory"].race
    plan = recipe_plan(lab.base_url, recipe, strategy, window_ms=WINDOW_MS, rounds=rounds)
    return run_race(plan).redacted()


def race_hostile() -> RaceResult:
    """Eight requests to a target whose bodies and headers carry script."""
    with serve(hostile_app()) as port:
        plan = RacePlan.repeat(
            RaceRequest(f"http://127.0.0.1:{port}/buy?item=<1>"),
            8,
            technique="last-byte",
            gate_wait_ms=10,
            timeouts=Timeouts(connect=2, response=3),
            oracle=Oracle(expect_max_successes=1),
        )
        return run_race(plan)


def _rounds(result: RaceResult, damage: int) -> tuple[MatrixRound, ...]:
    return tuple(
        MatrixRound(
            index=r.index,
            damage=damage if r.violations else 0,
            holds=not r.violations,
            successes=r.successes,
            rejections=sum(a.status is not None and 400 <= a.status < 500 for a in r.attempts),
            errors=r.errors,
            retries=0,
            arrival_spread_ms=r.arrival_spread.range_ns / 1e6 if r.arrival_spread else None,
            violations=r.violations,
        )
        for r in result.rounds
    )


def _cell(sample: RaceResult, **fields: Any) -> MatrixCell:
    damage = fields.pop("worst_damage", 0)
    rounds = _rounds(sample, damage)
    return MatrixCell(
        scenario="inventory",
        damage_unit="units sold that the stock did not have",
        worst_damage=damage,
        rounds_affected=sum(not r.holds for r in rounds),
        technique=sample.technique,
        protocol=sample.protocol,
        rounds=rounds,
        sample=sample,
        **fields,
    )


_THROUGHPUT = Throughput(
    clients=4, seconds=2.0, requests=900, successes=1, errors=0, per_second=450.0,
    successes_per_second=0.5, p50_ms=7.5, p99_ms=21.0,
)  # fmt: skip


def build_matrix(lab: LabProcess, hostile: RaceResult) -> MatrixResult:
    """Four cells from real races: vulnerable racy and atomic safe (as claimed), a SURPRISE
    (racy where the claim says safe), and one that could not be judged (``hostile``'s answers,
    with script in its strategy's name and its error)."""
    httpx.post(f"{lab.base_url}/lab/reset", json={"scenario": "inventory"}).raise_for_status()
    before = audit_state(lab)
    vulnerable = race_inventory(lab, "vulnerable", rounds=1)
    after = audit_state(lab)
    atomic = race_inventory(lab, "atomic", rounds=1)
    atomic_after = audit_state(lab)
    cells = (
        _cell(vulnerable, strategy="vulnerable", backend="sqlite", workers=1, claimed="never",
              claimed_safe=False, verdict="racy", as_claimed=True, worst_damage=9,
              state_before=before, state_after=after, throughput=_THROUGHPUT),
        _cell(atomic, strategy="atomic", backend="sqlite", workers=1, claimed="always",
              claimed_safe=True, verdict="safe", as_claimed=True, state_before=before,
              state_after=atomic_after,
              throughput=_THROUGHPUT.model_copy(update={"per_second": 380.0})),
        _cell(vulnerable, strategy="mutex", backend="postgresql", workers=1,
              claimed="one-worker", claimed_safe=True, verdict="racy", as_claimed=False,
              worst_damage=3, state_before=before, state_after=after),
        _cell(hostile, strategy=HOSTILE_STRATEGY, backend="mariadb", workers=4,
              claimed="always", claimed_safe=True, verdict="errors", as_claimed=None,
              error=HOSTILE_ERROR),
    )  # fmt: skip
    return MatrixResult(
        command=("toctou", "matrix", "--scenario", "inventory", "--rounds", "1"),
        started_at="2026-12-01T00:00:00+00:00",
        duration_s=12.5,
        versions={"python": "3.11", "toctou": "0.1.0"},
        rounds=1,
        window_ms=WINDOW_MS,
        labs=(
            LabRun(backend="sqlite", workers=1, database="sqlite+aiosqlite:///lab.db"),
            LabRun(backend="postgresql", workers=1, database="postgresql://u@db/test"),
            LabRun(backend="mariadb", workers=4, database="mysql://root@db/test"),
        ),
        cells=cells,
    )
