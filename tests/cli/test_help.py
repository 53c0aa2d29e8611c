"""The command line says what it is and what its exit codes mean."""

from __future__ import annotations

from typer.testing import CliRunner

from toctou import __version__
from toctou.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"toctou {__version__}"


def test_exit_codes_are_in_the_help() -> None:
    attack = runner.invoke(app, ["attack", "--help"], terminal_width=100)
    assert attack.exit_code == 0
    text = " ".join(attack.output.split())
    assert "Exit codes: 0 no race observed, 1 race, 2 usage error, 3 unreachable or" in text
    matrix = " ".join(runner.invoke(app, ["matrix", "--help"], terminal_width=100).output.split())
    assert "Exit 0 when every cell is as claimed, 1 when one surprises, 3 when a lab" in matrix
