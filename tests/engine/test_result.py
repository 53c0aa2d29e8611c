"""A saved result reads back from its text or its file; the engine's public names."""

from __future__ import annotations

from pathlib import Path

import pytest

import toctou.engine
from toctou.engine import Oracle, RacePlan, RaceRequest, RaceResult, Verdict

RESULT = RaceResult(
    RacePlan.repeat(RaceRequest("http://127.0.0.1:9/buy", "POST"), 2, oracle=Oracle()),
    "last-byte",
    "HTTP/1.1",
    (),
    Verdict("inconclusive", "INCONCLUSIVE: nothing sent"),
)


def test_a_result_reads_back_from_text_bytes_and_a_path(tmp_path: Path) -> None:
    saved = tmp_path / "race.json"
    saved.write_text(RESULT.to_json(), encoding="utf-8")
    assert RaceResult.from_json(RESULT.to_json()) == RESULT
    assert RaceResult.from_json(saved.read_bytes()) == RESULT
    assert RaceResult.from_json(saved) == RESULT
    assert RaceResult.load(str(saved)) == RESULT


def test_a_path_given_as_text_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"pass its Path or use RaceResult.load\(path\)"):
        RaceResult.from_json(str(tmp_path / "race.json"))


def test_the_engine_exports_what_callers_need() -> None:
    assert set(toctou.engine.__all__) == {
        "Attempt", "DEFAULT_BUDGET", "Oracle", "Probe", "RacePlan", "RaceRequest", "RaceResult",
        "RoundResult", "SuccessRule", "Technique", "Timeouts", "Verdict", "arun_race",
        "choose_technique", "parse_raw_request", "parse_request_spec", "run_race",
    }  # fmt: skip
    assert all(hasattr(toctou.engine, name) for name in toctou.engine.__all__)
