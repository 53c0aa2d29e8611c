"""The race summary in the terminal: green only for a round that was judged and held."""

from __future__ import annotations

from rich.console import Console

from toctou.cli.console import render_race
from toctou.engine import Oracle, RacePlan, RaceRequest, RaceResult, RoundResult, Verdict
from toctou.engine.result import Attempt

PLAN = RacePlan.repeat(
    RaceRequest("http://127.0.0.1:9/buy", "POST"), 2, oracle=Oracle(expect_max_successes=1)
)


def rows(*rounds: RoundResult) -> dict[str, str]:
    result = RaceResult(PLAN, "last-byte", "HTTP/1.1", rounds, Verdict("inconclusive", "x"))
    console = Console(record=True, width=200)
    console.print(render_race(result))
    lines = console.export_text().splitlines()
    return {
        cells[0]: line
        for line in lines
        if (cells := line.strip("│ ").split()) and cells[0].isdigit()
    }


def test_only_a_judged_round_that_held_is_hold() -> None:
    answered = (Attempt(0, 0, "HTTP/1.1", status=201, success=True),)
    refused = (Attempt(0, 0, "HTTP/1.1", status=404),)
    shown = rows(
        RoundResult(0, answered, successes=1, errors=0),
        RoundResult(1, refused, successes=0, errors=0),
        RoundResult(2, (), successes=0, errors=0, batch_error="connection reset"),
        RoundResult(3, (), successes=0, errors=0, reset_error="reset answered 500"),
    )
    assert "hold" in shown["1"]
    assert "not judged: no success" in shown["2"]
    assert "batch failed" in shown["3"]
    assert "hold" not in shown["3"]
    assert "reset failed" in shown["4"]
    assert "hold" not in shown["4"]
