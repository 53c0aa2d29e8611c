"""Verdict logic: successes, conservation, baselines, and honest uncertainty."""

from __future__ import annotations

import pytest

from toctou.engine import Oracle, Probe, RaceRequest, SuccessRule
from toctou.engine.oracle import (
    SuccessShapes,
    blind_spots,
    detection_bound,
    is_success,
    learn_unit,
    round_violations,
    success_shapes,
    verdict,
)
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


def baseline_round(before: float, after: float, successes: int) -> RoundResult:
    attempts = tuple(attempt() for _ in range(successes))
    return RoundResult(-1, attempts, successes, 0, probe_before=before, probe_after=after)


def test_the_probe_unit_is_learned_from_the_baseline() -> None:
    """Two units per purchase: with the default unit (-1) a correct endpoint would be a change
    nobody reported; the baseline (one request at a time) shows -2 per success."""
    oracle = Oracle(probe=PROBE, baseline=True)
    judging, note = learn_unit(oracle, baseline_round(10, 6, 2))
    assert judging.probe is not None
    assert judging.probe.unit == -2
    assert note is not None
    assert "-2 per success, learned from the sequential baseline" in note
    assert "not the given -1" in note
    assert round_violations(judging, 1, 2, 0, baseline_round(10, 6, 2)) == ()
    assert round_violations(oracle, 1, 2, 0, baseline_round(10, 6, 2)) != ()


def test_a_matching_unit_is_confirmed_and_an_unchecked_one_said_so() -> None:
    oracle = Oracle(probe=PROBE, baseline=True)
    same, note = learn_unit(oracle, baseline_round(5, 3, 2))
    assert same == oracle
    assert note == "probe unit -1 per success, as the sequential baseline showed"
    unchecked, note = learn_unit(oracle, baseline_round(5, 5, 0))
    assert unchecked == oracle
    assert note is not None
    assert "not checked: the sequential baseline had no success" in note
    _, note = learn_unit(Oracle(probe=PROBE), None)
    assert note == "probe unit -1 per success assumed, not checked (--baseline learns it)"
    must_not_change = Oracle(probe=Probe(PROBE.request, "$.n", unit=0), baseline=True)
    assert learn_unit(must_not_change, baseline_round(5, 5, 1)) == (must_not_change, None)


def test_without_a_baseline_a_change_nobody_reported_names_the_unit() -> None:
    (found,) = round_violations(Oracle(probe=PROBE), 1, 4, 2, None)
    assert "a change nobody reported" in found
    assert "unless a success changes it by other than -1" in found


def test_blind_spots_are_said_aloud() -> None:
    (no_probe,) = blind_spots(Oracle(expect_max_successes=1))
    assert "lost update" in no_probe
    assert "invisible" in no_probe
    assert blind_spots(Oracle(expect_max_successes=1, probe=PROBE)) == ()
    (no_limit,) = blind_spots(Oracle(probe=PROBE))
    assert "--expect-max-successes" in no_limit


def answered(index: int, body: str, status: int = 200) -> Attempt:
    return Attempt(index, index, "HTTP/1.1", status=status, body=body)


BUY = RaceRequest("http://h/buy", "POST")
CANCEL = RaceRequest("http://h/cancel", "POST")


def test_one_success_word_among_failures_becomes_the_rule() -> None:
    bodies = ['{"status": "success"}'] + ['{"status": "fail"}'] * 9
    r = RoundResult(0, tuple(answered(i, b) for i, b in enumerate(bodies)), 10, 0)
    shapes = success_shapes(Oracle(), (BUY,) * 10, [r], None)
    assert shapes.rule == SuccessRule(json_path="$.status", json_value="success")
    assert shapes.note is not None
    assert "1 x status=success" in shapes.note
    assert "9 x status=fail" in shapes.note
    assert shapes.ambiguity is None


@pytest.mark.parametrize(
    "other", ['{"status": "queued"}', '{"detail": "later"}', '{"result": "fail"}', "not json"]
)
def test_shapes_that_cannot_be_told_apart_are_named(other: str) -> None:
    r = RoundResult(0, (answered(0, '{"status": "success"}'), answered(1, other)), 2, 0)
    shapes = success_shapes(Oracle(), (BUY, BUY), [r], None)
    assert shapes.rule is None
    assert shapes.ambiguity is not None
    assert "1 x status=success" in shapes.ambiguity


def test_shapes_are_compared_per_request_and_only_under_the_default_rule() -> None:
    r = RoundResult(
        0, (answered(0, '{"status": "added"}'), answered(1, '{"status": "paid"}')), 2, 0
    )
    assert success_shapes(Oracle(), (BUY, CANCEL), [r], None) == SuccessShapes()
    mixed = RoundResult(0, (answered(0, '{"status": "ok"}'), answered(1, '{"status": "no"}')), 2, 0)
    given = Oracle(success=SuccessRule(statuses=(200,)))
    assert success_shapes(given, (BUY, BUY), [mixed], None) == SuccessShapes()
