"""``toctou demo`` (the README's main job) tells the seed's story end to end."""

from __future__ import annotations

import subprocess
import sys


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
    assert "Successful buys: 10 (expected: at most 1)" in out
    assert "Type: Lost Update" in out
    assert "Successful buys: 1 (expected: at most 1)" in out


def test_demo_refuses_bad_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toctou", "demo", "--buyers", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--buyers" in done.stderr
