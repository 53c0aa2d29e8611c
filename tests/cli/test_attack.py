"""``toctou attack``: exit codes, reports, redaction and bad input, against the real lab."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import new_item_id
from toctou.cli import app
from toctou.engine import RaceResult
from toctou.lab.process import LabProcess, free_port

runner = CliRunner()


def oracle_args(lab: LabProcess, item: int) -> list[str]:
    return [
        "--reset", f'POST {lab.base_url}/lab/reset {{"item_id": {item}, "stock": 1}}',
        "--probe", f"{lab.base_url}/inventory/items/{item}",
        "--probe-path", "$.stock",
        "--expect-max-successes", "1",
    ]  # fmt: skip


def attack(lab: LabProcess, strategy: str, item: int, *extra: str) -> list[str]:
    return [
        "attack",
        f"{lab.base_url}/inventory/{strategy}/purchase",
        "--json", json.dumps({"item_id": item}),
        "-H", "X-Race-Window-Ms: 20",
        "-n", "10",
        "--rounds", "2",
        *oracle_args(lab, item),
        *extra,
    ]  # fmt: skip


def test_race_found_exits_1_and_writes_reports(sqlite_lab: LabProcess, tmp_path: Path) -> None:
    item = new_item_id()
    out, junit = tmp_path / "race.json", tmp_path / "race.xml"
    result = runner.invoke(
        app,
        attack(sqlite_lab, "vulnerable", item, "--out", str(out), "--junit", str(junit),
               "-H", "Authorization: Bearer hunter2"),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "RACE: invariants broken in 2 of 2 round(s)" in result.output
    assert "lost update" in result.output
    saved = RaceResult.from_json(out.read_text())
    assert saved.verdict.outcome == "race"
    assert len(saved.rounds[0].attempts) == 10
    assert "hunter2" not in out.read_text()
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "3")


def test_no_race_observed_exits_0(sqlite_lab: LabProcess) -> None:
    result = runner.invoke(app, attack(sqlite_lab, "atomic", new_item_id()))
    assert result.exit_code == 0, result.output
    assert "NO RACE OBSERVED in 2 round(s)" in result.output


def test_no_redact_keeps_credentials(sqlite_lab: LabProcess, tmp_path: Path) -> None:
    out = tmp_path / "race.json"
    args = attack(
        sqlite_lab, "atomic", new_item_id(), "-H", "Cookie: c=42", "--no-redact", "--out", str(out)
    )
    assert runner.invoke(app, args).exit_code == 0
    assert "c=42" in out.read_text()


def test_unreachable_target_exits_3() -> None:
    result = runner.invoke(
        app, ["attack", f"http://127.0.0.1:{free_port()}/", "--expect-max-successes", "1"]
    )
    assert result.exit_code == 3
    assert "INCONCLUSIVE" in result.output
    assert "cannot connect" in result.output


def test_no_oracle_is_inconclusive_not_a_pass(sqlite_lab: LabProcess) -> None:
    result = runner.invoke(app, ["attack", f"{sqlite_lab.base_url}/health", "-n", "5"])
    assert result.exit_code == 3
    assert "nothing to judge by" in result.output


def test_request_file_and_config(sqlite_lab: LabProcess, tmp_path: Path) -> None:
    item = new_item_id()
    request = tmp_path / "buy.http"
    request.write_text(
        f"POST /inventory/vulnerable/purchase HTTP/1.1\nHost: ignored.test\n"
        f"Content-Type: application/json\nX-Race-Window-Ms: 20\n\n"
        f'{{"item_id": {item}}}'
    )
    args = ["attack", sqlite_lab.base_url, "--request-file", str(request), "-n", "10"]
    result = runner.invoke(app, [*args, *oracle_args(sqlite_lab, item)])
    assert result.exit_code == 1, result.output

    config = tmp_path / "race.toml"
    config.write_text(
        f"""
rounds = 2
[[requests]]
url = "{sqlite_lab.base_url}/inventory/lock/purchase"
method = "POST"
json = {{ item_id = {item} }}
count = 10
[oracle]
expect_max_successes = 1
reset = 'POST {sqlite_lab.base_url}/lab/reset {{"item_id": {item}, "stock": 1}}'
"""
    )
    result = runner.invoke(app, ["attack", "--config", str(config)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a URL"),
        (["http://127.0.0.1:1/", "-H", "no colon"], "Name: value"),
        (["http://127.0.0.1:1/", "--json", "{nope"], "not JSON"),
        (["http://127.0.0.1:1/", "--json", "{}", "-d", "a=1"], "not both"),
        (["http://127.0.0.1:1/", "--technique", "warp"], "choose from"),
        (["http://127.0.0.1:1/", "-n", "0"], "--count"),
        (["ftp://127.0.0.1:1/"], "not an http(s) URL"),
        (["http://127.0.0.1:1/", "-n", "500", "--rounds", "5"], "over the budget of 2000"),
        (["http://127.0.0.1:1/", "--probe", "http://127.0.0.1:1/"], "--probe-path"),
        (["http://127.0.0.1:1/", "--success-json-path", "$[?("], "not a JSON path"),
        (["http://127.0.0.1:1/", "--baseline"], "needs a reset"),
        (["--config", "/nonexistent/race.toml"], "cannot read"),
        (["--request-file", "/nonexistent/req.http"], "--request-file"),
    ],
)
def test_bad_input_exits_2_with_a_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["attack", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_budget_can_be_raised_explicitly(sqlite_lab: LabProcess) -> None:
    args = [
        "attack",
        f"{sqlite_lab.base_url}/health",
        "-n",
        "3",
        "--rounds",
        "2",
        "--max-requests",
        "5",
    ]
    result = runner.invoke(app, [*args, "--expect-max-successes", "10"])
    assert result.exit_code == 2
    assert "over the budget of 5" in result.output
    result = runner.invoke(app, [*args, "--max-requests", "6", "--expect-max-successes", "10"])
    assert result.exit_code == 0, result.output


def test_ctrl_c_keeps_the_rounds_done_and_writes_the_reports(
    sqlite_lab: LabProcess, tmp_path: Path
) -> None:
    """Ctrl-C: the round under way finishes, no other starts, the rounds done are judged and
    every report is written; exit 130."""
    item = new_item_id()
    args = attack(sqlite_lab, "vulnerable", item, "--out", "race.json", "--junit", "race.xml")
    args[args.index("--rounds") + 1] = "100"
    args[args.index("-n") + 1] = "2"
    running = subprocess.Popen(
        [sys.executable, "-m", "toctou", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(600):  # until the first round's reset has made the item
            if httpx.get(f"{sqlite_lab.base_url}/inventory/items/{item}").status_code == 200:
                break
            time.sleep(0.05)
    finally:
        running.send_signal(signal.SIGINT)
        output, _ = running.communicate(timeout=120)
    assert running.returncode == 130, output
    assert "Traceback" not in output
    saved = RaceResult.load(tmp_path / "race.json")
    assert saved.stopped
    assert 1 <= len(saved.rounds) < 100
    assert f"stopped after {len(saved.rounds)} of 100 round(s)" in saved.notes
    assert saved.verdict.outcome == "race"  # the vulnerable rounds that ran were judged
    assert (tmp_path / "race.xml").exists()
