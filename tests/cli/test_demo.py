"""``toctou demo`` (the README's main job) tells the seed's story end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_demo_shows_the_oversell_and_both_fixes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toctou", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # vulnerable races at the seed's 100 ms window and at 0 ms; atomic and lock hold at both
    assert out.count("RACE CONDITION DETECTED!") == 2
    assert out.count("SECURE.") == 4
    assert "over HTTP/2" in out  # the best technique the lab supports: single-packet
    assert "Successful: 10 (expected: at most 1)" in out
    assert "Type: Lost Update" in out
    assert "Successful: 1 (expected: at most 1)" in out
    assert "Damage: 9 units sold that the stock did not have" in out


def test_demo_refuses_bad_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toctou", "demo", "--buyers", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--buyers" in done.stderr


def test_demo_races_another_scenario_from_its_recipe() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toctou", "demo", "--scenario", "inventory",
         "--strategy", "vulnerable", "--strategy", "constraint", "--buyers", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "inventory / constraint, race window 0 ms" in done.stdout
    assert "Fired 5 requests at once" in done.stdout
    assert "inventory / atomic" not in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "no scenario 'nope'; valid: inventory"),
        (["--strategy", "nope"], "has no strategy 'nope'"),
    ],
)
def test_demo_names_what_exists_when_asked_for_what_does_not(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toctou", "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert message in done.stderr


def test_the_summary_fits_80_columns_and_says_what_the_lab_admits() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toctou", "demo", "--strategy", "vulnerable", "--buyers", "12"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    summary = done.stdout[done.stdout.index("Summary:") :]
    rows = [line for line in summary.splitlines() if "vulnerable" in line]
    assert len(rows) == 2  # one line per burst: nothing wrapped
    assert "…" not in summary  # nothing cut
    cells = [cell.strip() for cell in rows[0].strip("│ ").split("│")]
    assert cells[:4] == ["100 ms", "vulnerable", "1", "10/12"]  # stock 1 before it
    assert "LOST UPDATE" in cells[-1]
    note = " ".join(summary.split())
    assert "The lab runs 10 database requests per worker at once (TOCTOU_POOL_SIZE)" in note
    assert "the other 2 of each burst of 12 waited in arrival order" in note
