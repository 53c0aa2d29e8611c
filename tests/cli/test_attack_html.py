"""``toctou attack --html FILE``: the HTML report written beside --out, whatever the verdict."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.cli.test_attack import attack
from tests.conftest import new_item_id
from tests.report.page import parse
from toctou.cli import app
from toctou.lab.process import LabProcess, free_port

runner = CliRunner()


def test_html_report_of_a_race(sqlite_lab: LabProcess, tmp_path: Path) -> None:
    html, out = tmp_path / "race.html", tmp_path / "race.json"
    args = attack(sqlite_lab, "vulnerable", new_item_id(), "--html", str(html), "--out", str(out),
                  "-H", "Authorization: Bearer hunter22")  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    text = html.read_text()
    assert "hunter22" not in text  # redacted, as --out is
    root = parse(text)
    assert root.by_id("verdict").text().startswith("RACE: invariants broken in 2 of 2 round(s)")
    assert len(root.find("section", class_="requests").cells()) == 10
    saved = json.loads(out.read_text())
    assert saved["verdict"]["summary"] in root.find("title").text()


def test_html_report_when_inconclusive(tmp_path: Path) -> None:
    html = tmp_path / "down.html"
    url = f"http://127.0.0.1:{free_port()}/"
    result = runner.invoke(app, ["attack", url, "--expect-max-successes", "1", "--html", str(html)])
    assert result.exit_code == 3
    root = parse(html.read_text())
    assert root.by_id("verdict").text().startswith("INCONCLUSIVE")
    assert "cannot connect" in root.find("section", class_="requests").text()


def test_html_path_checked_before_anything_is_sent(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = runner.invoke(app, ["attack", url, "--html", str(tmp_path / "no" / "r.html")])
    assert result.exit_code == 2
    assert "no such directory" in result.output
