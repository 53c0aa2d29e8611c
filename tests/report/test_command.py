"""The commands a report shows reproduce the plan: run them and compare what they planned."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.engine.hostile import echo_app, serve
from toctou.cli import app
from toctou.engine import Oracle, RacePlan, RaceRequest, RaceResult, SuccessRule
from toctou.lab.process import LabProcess
from toctou.report.command import attack_command, race_toml, serve_command

runner = CliRunner()


def argv(command: str) -> list[str]:
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:2] == ["toctou", "attack"]
    return words[1:]


def test_the_command_races_the_same_plan(
    vulnerable_race: RaceResult, sqlite_lab: LabProcess, tmp_path: Path
) -> None:
    out = tmp_path / "again.json"
    shown = attack_command(vulnerable_race.plan)
    assert shown.config is None
    result = runner.invoke(app, [*argv(shown.command), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert RaceResult.from_json(out.read_text()).plan == vulnerable_race.plan


def test_different_requests_go_to_race_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(echo_app()[0]) as port:
        base = f"http://127.0.0.1:{port}"
        json_buy = RaceRequest(
            f"{base}/a", "POST", (("Content-Type", "application/json"),), b'{"x": "\\u00e9"}'
        )
        put = RaceRequest(f"{base}/b?q=1", "PUT", (("X-Empty", ""),), b"k=v", offset_ms=2.5)
        plan = RacePlan(
            requests=(json_buy, json_buy, put),
            technique="last-byte",
            gate_wait_ms=20,
            oracle=Oracle(success=SuccessRule(statuses=(200,)), expect_max_successes=5),
        )
        shown = attack_command(plan)
        assert shown.config == race_toml(plan)
        assert "count = 2" in shown.config
        monkeypatch.chdir(tmp_path)
        (tmp_path / "race.toml").write_text(shown.config, encoding="utf-8")
        result = runner.invoke(app, [*argv(shown.command), "--out", "again.json"])
    assert result.exit_code == 0, result.output
    assert RaceResult.from_json((tmp_path / "again.json").read_text()).plan == plan


def test_a_body_that_is_not_text_is_named() -> None:
    plan = RacePlan.repeat(RaceRequest("http://h/x", "POST", (), b"\xff\x00"), 2)
    shown = attack_command(plan)
    assert "--data-binary @body.bin" in shown.command
    assert shown.notes == ("the body (2 bytes) is not text: save it as body.bin",)


def test_serve_command_names_the_lab() -> None:
    plan = RacePlan.repeat(RaceRequest("http://127.0.0.1:4321/x"), 2)
    command = serve_command(plan, workers=4, database="postgresql://u@db/t", http2=True)
    assert shlex.split(command.replace("\\\n", " ")) == [
        "toctou", "serve", "--port", "4321", "--workers", "4",
        "--db", "postgresql://u@db/t", "--http2",
    ]  # fmt: skip
