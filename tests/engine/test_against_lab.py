"""The engine against the real lab: a race in `vulnerable`, none in the fixed strategies."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import new_item_id
from toctou.engine import Oracle, Probe, RacePlan, RaceRequest, run_race
from toctou.lab.process import LabProcess, serve_lab

JSON = (("Content-Type", "application/json"),)


@pytest.fixture(scope="module", params=["http1", "http2"])
def lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    with serve_lab(http2=request.param == "http2") as served:
        yield served


def plan(lab: LabProcess, strategy: str, technique: str, *, window_ms: int = 20) -> RacePlan:
    item = new_item_id()
    return RacePlan.repeat(
        RaceRequest(
            f"{lab.base_url}/inventory/{strategy}/purchase",
            "POST",
            (*JSON, ("X-Race-Window-Ms", str(window_ms))),
            json.dumps({"item_id": item}).encode(),
        ),
        20,
        technique=technique,
        rounds=2,
        oracle=Oracle(
            expect_max_successes=1,
            reset=RaceRequest(
                f"{lab.base_url}/lab/reset",
                "POST",
                JSON,
                json.dumps({"item_id": item, "stock": 1}).encode(),
            ),
            probe=Probe(RaceRequest(f"{lab.base_url}/inventory/items/{item}"), "$.stock"),
        ),
    )


def techniques_for(lab: LabProcess) -> list[str]:
    return ["single-packet", "auto"] if lab.http2 else ["naive", "seed-style", "last-byte", "auto"]


def test_vulnerable_strategy_is_a_race_with_every_technique(lab: LabProcess) -> None:
    for technique in techniques_for(lab):
        result = run_race(plan(lab, "vulnerable", technique))
        assert result.verdict.outcome == "race", (technique, result.verdict)
        assert result.exit_code == 1
        assert any("lost update" in e for e in result.verdict.evidence)
        if technique == "auto":
            assert result.technique == ("single-packet" if lab.http2 else "last-byte")


@pytest.mark.parametrize("strategy", ["atomic", "lock", "optimistic", "serializable", "constraint"])
def test_fixed_strategies_show_no_race(lab: LabProcess, strategy: str) -> None:
    technique = "single-packet" if lab.http2 else "last-byte"
    result = run_race(plan(lab, strategy, technique))
    assert result.verdict.outcome == "no_race_observed", result.verdict
    assert result.exit_code == 0
    assert result.verdict.detection_bound == pytest.approx(1 - 0.05**0.5)
    for r in result.rounds:
        assert r.successes == 1
        assert r.arrival_spread is not None  # the lab stamps every response
        assert r.arrival_spread.count == 20


def test_baseline_is_compared_with_the_parallel_run(lab: LabProcess) -> None:
    base = plan(lab, "vulnerable", "auto")
    with_baseline = RacePlan(
        requests=base.requests,
        oracle=Oracle(reset=base.oracle.reset, baseline=True),
    )
    result = run_race(with_baseline)
    assert result.baseline is not None
    assert result.baseline.successes == 1  # one by one, only one buyer gets the unit
    assert result.verdict.outcome == "race"
    assert "when sent one by one" in result.verdict.evidence[0]


def test_release_is_synchronised_by_construction(lab: LabProcess) -> None:
    if lab.http2:
        result = run_race(plan(lab, "atomic", "single-packet"))
        for r in result.rounds:
            assert r.release_spread is not None
            assert r.release_spread.range_ns == 0  # every final frame left in one write
            assert {a.protocol for a in r.attempts} == {"HTTP/2"}
            assert {a.connection for a in r.attempts} == {0}  # 20 streams fit one connection
    else:
        result = run_race(plan(lab, "atomic", "last-byte"))
        for r in result.rounds:
            assert len({a.connection for a in r.attempts}) == 20  # one connection per request
            assert all(
                a.connected_ns is not None
                and a.released_ns is not None
                and a.connected_ns < min(b.released_ns or 0 for b in r.attempts)
                for a in r.attempts
            )  # every handshake finished before the first final byte left


def test_single_packet_shards_over_the_stream_limit() -> None:
    """Hypercorn allows 100 concurrent streams: 150 requests need two connections."""
    with serve_lab(http2=True) as lab:
        big = plan(lab, "atomic", "single-packet")
        result = run_race(
            RacePlan(
                requests=(big.requests[0],) * 150, technique="single-packet", oracle=big.oracle
            )
        )
    r = result.rounds[0]
    assert len(r.attempts) == 150
    assert sorted({a.connection for a in r.attempts}) == [0, 1]
    assert sorted(a.index for a in r.attempts) == list(range(150))
    assert r.successes == 1
    assert result.verdict.outcome == "no_race_observed"
