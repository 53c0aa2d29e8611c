"""Verdicts that cannot be fooled, against the lab: the probe's unit learned from the sequential
baseline, 2xx answers that say "fail", the workers a batch reached, and what an oracle cannot
see said aloud."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.conftest import new_item_id
from toctou.engine import Oracle, Probe, RacePlan, RaceRequest, Technique, run_race
from toctou.lab.process import LabProcess, serve_lab

JSON = (("Content-Type", "application/json"),)


def purchase_plan(
    lab: LabProcess,
    strategy: str,
    *,
    stock: int,
    quantity: int,
    buyers: int,
    baseline: bool = False,
    probe: bool = True,
    expect_max_successes: int | None = None,
) -> RacePlan:
    item = new_item_id()
    body = json.dumps({"item_id": item, "quantity": quantity}).encode()
    return RacePlan.repeat(
        RaceRequest(
            f"{lab.base_url}/inventory/{strategy}/purchase",
            "POST",
            (*JSON, ("X-Race-Window-Ms", "50")),
            body,
        ),
        buyers,
        rounds=2,
        technique="last-byte",
        oracle=Oracle(
            expect_max_successes=expect_max_successes,
            baseline=baseline,
            reset=RaceRequest(
                f"{lab.base_url}/lab/reset",
                "POST",
                JSON,
                json.dumps({"item_id": item, "stock": stock}).encode(),
            ),
            probe=Probe(RaceRequest(f"{lab.base_url}/inventory/items/{item}"), "$.stock")
            if probe
            else None,
        ),
    )


def test_a_correct_endpoint_selling_two_units_is_not_a_race_once_the_unit_is_learned(
    sqlite_lab: LabProcess,
) -> None:
    """Ten buyers of 2 units, stock 6: three sell, the stock drops by 6. With the default unit
    (-1 per success) that is "a change nobody reported"; the baseline shows -2 per success."""
    learned = run_race(
        purchase_plan(sqlite_lab, "atomic", stock=6, quantity=2, buyers=10, baseline=True)
    )
    assert learned.baseline is not None
    assert learned.baseline.successes == 3
    assert learned.verdict.outcome == "no_race_observed", learned.verdict
    assert any("-2 per success, learned from the sequential baseline" in n for n in learned.notes)
    assert [r.successes for r in learned.rounds] == [3, 3]

    assumed = run_race(purchase_plan(sqlite_lab, "atomic", stock=6, quantity=2, buyers=10))
    assert assumed.verdict.outcome == "race"  # the unit was wrong, and nobody could know
    assert any(
        "unless a success changes it by other than -1" in e for e in assumed.verdict.evidence
    )
    assert any("assumed, not checked (--baseline learns it)" in n for n in assumed.notes)


def test_the_learned_unit_still_catches_the_vulnerable_strategy(sqlite_lab: LabProcess) -> None:
    result = run_race(
        purchase_plan(sqlite_lab, "vulnerable", stock=6, quantity=2, buyers=10, baseline=True)
    )
    assert result.verdict.outcome == "race", result.verdict
    assert any("a lost update" in e for e in result.verdict.evidence)


def test_without_a_probe_the_lost_update_it_cannot_see_is_said_aloud(
    sqlite_lab: LabProcess,
) -> None:
    """Stock 5, two buyers of 2: both succeed, which the success limit allows, and the stock ends
    at 3, not 1. Without a probe the verdict cannot see it, and says so."""
    plan = purchase_plan(
        sqlite_lab, "vulnerable", stock=5, quantity=2, buyers=2, probe=False, expect_max_successes=2
    )
    result = run_race(plan)
    assert [r.successes for r in result.rounds] == [2, 2]
    assert result.verdict.outcome == "no_race_observed"
    assert any("no state probe" in n and "invisible" in n for n in result.notes)


def seed_plan(lab: LabProcess, route: str) -> RacePlan:
    """The seed's own API, raced with the default success rule ("any 2xx"): it refuses a sale
    with 200 {"status": "fail"}."""
    return RacePlan.repeat(
        RaceRequest(f"{lab.base_url}{route}", "POST", (("X-Race-Window-Ms", "50"),)),
        10,
        rounds=2,
        technique="last-byte",
        oracle=Oracle(
            expect_max_successes=1,
            reset=RaceRequest(f"{lab.base_url}/reset"),
            probe=Probe(RaceRequest(f"{lab.base_url}/status"), "$.stock"),
        ),
    )


def test_a_200_that_says_fail_is_not_a_success(sqlite_lab: LabProcess) -> None:
    secure = run_race(seed_plan(sqlite_lab, "/buy-secure"))
    assert secure.verdict.outcome == "no_race_observed", secure.verdict
    assert [r.successes for r in secure.rounds] == [1, 1]
    (note,) = [n for n in secure.notes if "the 2xx answers fall into shapes" in n]
    assert "1 x status=success" in note or "2 x status=success" in note
    assert "x status=fail" in note
    assert "only status=success was counted" in note

    vulnerable = run_race(seed_plan(sqlite_lab, "/buy-vulnerable"))
    assert vulnerable.verdict.outcome == "race", vulnerable.verdict


@pytest.fixture(scope="module")
def h2_two_workers() -> Iterator[LabProcess]:
    with serve_lab(http2=True, workers=2) as lab:
        yield lab


def mutex_plan(lab: LabProcess, technique: Technique) -> RacePlan:
    plan = purchase_plan(lab, "mutex", stock=1, quantity=1, buyers=10, expect_max_successes=1)
    return replace(plan, technique=technique, rounds=10)


def test_auto_reaches_every_worker_of_a_multi_process_server(h2_two_workers: LabProcess) -> None:
    """Single-packet on one connection reaches one worker, where a per-process lock holds;
    auto spreads the batch over several connections released together."""
    result = run_race(mutex_plan(h2_two_workers, "auto"))
    assert result.technique == "single-packet"
    assert result.verdict.outcome == "race", result.verdict
    assert {r.connections for r in result.rounds} == {4}
    assert max(r.workers or 0 for r in result.rounds) == 2
    assert any("single-packet over 4 connections released together" in n for n in result.notes)


def test_one_connection_says_it_tested_one_worker(h2_two_workers: LabProcess) -> None:
    result = run_race(mutex_plan(h2_two_workers, "single-packet"))
    assert {r.connections for r in result.rounds} == {1}
    assert {r.workers for r in result.rounds} == {1}
    assert result.verdict.outcome == "no_race_observed"  # the mutex holds within one process
    (reach,) = [n for n in result.notes if n.startswith("each round went over 1 connection(s)")]
    assert "a race between the processes of a multi-process server was not tested" in reach
