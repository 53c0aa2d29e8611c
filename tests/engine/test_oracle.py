"""Verdict logic: successes, conservation, baselines, and honest uncertainty."""

from __future__ import annotations

import pytest

from toctou.engine import Oracle, Probe, RaceRequest, SuccessRule
from toctou.engine.oracle import detection_bound, is_success, round_violations, verdict
from toctou.engine.result import Attempt, RoundResult

PROBE = Probe(RaceRequest("http://h/items/1"), "$.stock", unit=-1)


def attempt(
    status: int | None = 201, body: str = '{"status": "purchased"}', error: str | None = None
) -> Attempt:
    return Attempt(0, 0, "HTTP/1.1", status=status, body=body, error=error)


@pytest.mark.parametrize(
    ("rule", "a", "expected"),
    [
        (SuccessRule(), attempt(201), True),
        (SuccessRule(), attempt(409), False),
        (SuccessRule(), attempt(None, error="timed out"), False),
        (SuccessRule(statuses=(409,)), attempt(409), True),
        (SuccessRule(body_regex="purch"), attempt(201), True),
        (SuccessRule(body_regex="^nope"), attempt(201), False),
        (SuccessRule(json_path="$.status", json_value="purchased"), attempt(201), True),
        (SuccessRule(json_path="$.status", json_value="rejected"), attempt(201), False),
        (SuccessRule(json_path="$.missing"), attempt(201), False),
        (SuccessRule(json_path="$.status"), attempt(201, body="not json"), False),
    ],
)
def test_success_rule(rule: SuccessRule, a: Attempt, expected: bool) -> None:
    assert is_success(a, rule) is expected


def test_lost_update_is_caught_by_conservation() -> None:
    found = round_violations(Oracle(probe=PROBE), 10, 1, 0, None)
    assert len(found) == 1
    assert "lost update" in found[0]


def test_conservation_holds_when_the_numbers_agree() -> None:
    assert round_violations(Oracle(probe=PROBE), 3, 5, 2, None) == ()


def test_a_unit_of_zero_means_the_value_must_not_change() -> None:
    damage = Oracle(probe=Probe(RaceRequest("http://h/lab/audit"), "$.damage", unit=0))
    assert round_violations(damage, 10, 0, 0, None) == ()
    (found,) = round_violations(damage, 1, 0, 9, None)
    assert "0 -> 9" in found
    assert "must not change" in found


def test_too_many_successes() -> None:
    assert round_violations(Oracle(expect_max_successes=1), 2, None, None, None) == (
        "2 successes, at most 1 expected",
    )


def test_parallel_run_beating_the_baseline_is_a_race() -> None:
    baseline = RoundResult(-1, (), successes=1, errors=0)
    found = round_violations(Oracle(baseline=True), 4, None, None, baseline)
    assert found == ("4 successes in parallel, 1 when sent one by one",)


def clean(i: int) -> RoundResult:
    return RoundResult(i, (attempt(),), 1, 0)


def test_no_race_observed_reports_its_detection_bound() -> None:
    v = verdict(Oracle(expect_max_successes=1), [clean(i) for i in range(20)], None)
    assert v.outcome == "no_race_observed"
    assert v.detection_bound == pytest.approx(detection_bound(20))
    assert 0.13 < detection_bound(20) < 0.14  # 1 - 0.05 ** (1/20)


def test_without_an_oracle_nothing_passes_silently() -> None:
    v = verdict(Oracle(), [clean(0)], None)
    assert v.outcome == "inconclusive"
    assert "nothing to judge by" in v.summary


def test_errors_make_a_clean_run_inconclusive_but_never_hide_a_race() -> None:
    broken = RoundResult(1, (attempt(None, error="timed out"),), 0, 1)
    assert (
        verdict(Oracle(expect_max_successes=1), [clean(0), broken], None).outcome == "inconclusive"
    )
    racy = RoundResult(2, (), 3, 1, violations=("3 successes, at most 1 expected",))
    v = verdict(Oracle(expect_max_successes=1), [clean(0), broken, racy], None)
    assert v.outcome == "race"
    assert v.evidence == ("round 3: 3 successes, at most 1 expected",)


def test_failed_reset_is_inconclusive() -> None:
    v = verdict(
        Oracle(expect_max_successes=1),
        [RoundResult(0, (), 0, 0, reset_error="reset answered 500")],
        None,
    )
    assert v.outcome == "inconclusive"
    assert "reset failed" in v.summary


def idle(i: int, status: int = 404) -> RoundResult:
    return RoundResult(i, (attempt(status, body="{}"),) * 3, 0, 0)


def test_a_run_where_nothing_succeeded_is_inconclusive_not_a_pass() -> None:
    v = verdict(Oracle(expect_max_successes=1, probe=PROBE), [idle(0), idle(1)], None)
    assert v.outcome == "inconclusive"
    assert "no request succeeded in any of 2 round(s)" in v.summary
    assert "404 x 6" in v.summary


def test_rounds_without_a_success_do_not_count_toward_the_bound() -> None:
    v = verdict(Oracle(expect_max_successes=1), [clean(0), idle(1, 409), clean(2)], None)
    assert v.outcome == "no_race_observed"
    assert v.detection_bound == pytest.approx(detection_bound(2))
    assert v.summary.startswith("NO RACE OBSERVED in 2 round(s) (1 more had no success")
    assert v.evidence == ("round 2: no success (409 x 3)",)


def test_zero_successes_pass_when_zero_are_expected() -> None:
    v = verdict(Oracle(expect_max_successes=0), [idle(0, 403), idle(1, 403)], None)
    assert v.outcome == "no_race_observed"
    assert v.detection_bound == pytest.approx(detection_bound(2))
