"""What the report derives from a result: outcomes, body shapes, groups, state changes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from toctou.engine import Attempt, RaceResult
from toctou.report.evidence import (
    attack_sentence,
    body_shape,
    drawn_round,
    outcome,
    response_groups,
    state_changes,
    worker_pid,
)


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        pytest.param(
            '{"status": "rejected", "reason": "out_of_stock", "message": "0 left, 1 asked"}',
            '{message: str, reason: "out_of_stock", status: "rejected"}',
            id="kinds-kept",
        ),
        pytest.param(
            '{"effect": "order 7", "order": {"id": 7, "paid": true, "tags": ["a"], "x": null}}',
            "{effect: str, order: {id: number, paid: bool, tags: [str], x: null}}",
            id="particulars-dropped",
        ),
        pytest.param("Error 503 after 30 s\n", "text: Error N after N s", id="text"),
        pytest.param("  ", "(empty)", id="empty"),
        pytest.param('{"status": "' + "x" * 41 + '"}', "{status: str}", id="long-kind"),
    ],
)
def test_body_shape(body: str, shape: str) -> None:
    assert body_shape(body) == shape


def test_body_shape_is_bounded() -> None:
    shape = body_shape("{" + ", ".join(f'"k{i}": {i}' for i in range(100)) + "}")
    assert len(shape) == 160
    assert shape.endswith("…")


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        pytest.param(Attempt(0, 0, "HTTP/1.1", status=201, success=True), "won", id="won"),
        pytest.param(Attempt(0, 0, "HTTP/1.1", status=409), "rejected", id="409"),
        pytest.param(Attempt(0, 0, "HTTP/1.1", status=200), "rejected", id="2xx-not-success"),
        pytest.param(Attempt(0, 0, "HTTP/1.1", status=503), "error", id="5xx"),
        pytest.param(Attempt(0, 0, "HTTP/1.1", error="timed out"), "error", id="no-answer"),
        pytest.param(
            Attempt(0, 0, "HTTP/1.1", status=200, error="body capped", body_truncated=True),
            "rejected",
            id="capped-body",
        ),
    ],
)
def test_outcome(attempt: Attempt, expected: str) -> None:
    assert outcome(attempt) == expected


def test_worker_pid_from_server_timing() -> None:
    stamped = Attempt(0, 0, "h", headers=(("Server-Timing", 'arrival;desc="1", worker;desc="77"'),))
    assert worker_pid(stamped) == "77"
    assert worker_pid(Attempt(0, 0, "h")) is None


def test_state_changes_name_every_leaf() -> None:
    before = {"items": [{"id": 1, "stock": 1}], "total": 0}
    after = {"items": [{"id": 1, "stock": 0}], "total": 1, "new": "x"}
    rows = state_changes(before, after)
    assert [(r.path, r.before, r.after, r.changed) for r in rows] == [
        ("items[0].id", "1", "1", False),
        ("items[0].stock", "1", "0", True),
        ("total", "0", "1", True),
        ("new", "-", '"x"', True),
    ]


def test_drawn_round_is_the_worst(vulnerable_race: RaceResult, atomic_race: RaceResult) -> None:
    drawn = drawn_round(vulnerable_race)
    assert drawn is not None
    assert drawn.violations
    assert drawn.successes == max(r.successes for r in vulnerable_race.rounds)
    assert drawn_round(replace(atomic_race, rounds=())) is None


def test_sentence_gives_the_first_evidence_of_a_race(
    vulnerable_race: RaceResult, atomic_race: RaceResult
) -> None:
    first = vulnerable_race.verdict.evidence[0]
    assert "successes, at most 1 expected" in first
    assert attack_sentence(vulnerable_race).endswith(f"({first}).")
    assert attack_sentence(atomic_race) == atomic_race.verdict.summary + "."


def test_groups_set_the_race_against_the_baseline(
    baseline_race: RaceResult, atomic_race: RaceResult
) -> None:
    assert baseline_race.baseline is not None
    groups = {(g.status, g.outcome): (g.race, g.baseline) for g in response_groups(baseline_race)}
    assert groups == {("409", "rejected"): (9, 9), ("201", "won"): (1, 1)}
    assert {g.baseline for g in response_groups(atomic_race)} == {None}
