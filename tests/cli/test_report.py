"""``toctou report``: a saved attack or matrix in, one HTML file out; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.report import results
from tests.report.page import parse
from toctou.cli import app
from toctou.lab.process import LabProcess

runner = CliRunner()


@pytest.fixture(scope="module")
def attack_json(sqlite_lab: LabProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "attack.json"
    path.write_text(results.race_inventory(sqlite_lab, "vulnerable", rounds=1).to_json())
    return path


def test_renders_a_saved_attack(attack_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(attack_json), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (attack report)" in result.output
    assert parse(out.read_text()).by_id("verdict").text().startswith("RACE: ")


def test_renders_a_saved_matrix(sqlite_lab: LabProcess, tmp_path: Path) -> None:
    saved = tmp_path / "matrix.json"
    saved.write_text(results.build_matrix(sqlite_lab, results.race_hostile()).to_json())
    out = tmp_path / "matrix.html"
    result = runner.invoke(app, ["report", str(saved), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "(matrix report)" in result.output
    root = parse(out.read_text())
    assert "SURPRISE" in root.by_id("verdict").text()
    assert root.by_id("heatmap")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read", id="missing"),
        pytest.param(b"{not json", "is not JSON", id="not-json"),
        pytest.param(b"\xff\xfe", "is not JSON", id="not-utf8"),
        pytest.param(b"[1, 2]", "not a JSON object", id="not-an-object"),
        pytest.param(b'{"plan": {}}', "is not a saved toctou result: ", id="not-a-result"),
        pytest.param(
            b'{"schema_version": 1, "cells": [{"scenario": 1}]}',
            "is not a saved toctou result: cells.0",
            id="not-a-matrix",
        ),
    ],
)
def test_bad_input_exits_2_with_a_message(
    content: bytes | None, message: str, tmp_path: Path
) -> None:
    saved = tmp_path / "saved.json"
    if content is not None:
        saved.write_bytes(content)
    result = runner.invoke(app, ["report", str(saved), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        pytest.param(".", "is a directory", id="directory"),
        pytest.param("nowhere/r.html", "no such directory", id="no-directory"),
        pytest.param("attack.json", "is the result itself", id="the-input"),
    ],
)
def test_bad_output_exits_2(attack_json: Path, output: str, message: str) -> None:
    target = attack_json.parent / output
    before = attack_json.read_text()
    result = runner.invoke(app, ["report", str(attack_json), "-o", str(target)])
    assert result.exit_code == 2
    assert message in result.output
    assert attack_json.read_text() == before
    json.loads(before)
