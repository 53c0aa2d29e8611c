"""``docs/pictures.py`` cuts the README's pictures from real reports with headless chromium."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from tests.report.browser import chromium_path
from toctou.engine import RaceResult
from toctou.matrix.result import MatrixResult

SCRIPT = Path(__file__).parents[2] / "docs" / "pictures.py"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_pictures_of_an_attack_and_a_matrix(
    vulnerable_race: RaceResult, matrix: MatrixResult, tmp_path: Path
) -> None:
    chromium = chromium_path()
    attack, saved = tmp_path / "attack.json", tmp_path / "matrix.json"
    attack.write_text(vulnerable_race.to_json())
    saved.write_text(matrix.to_json())
    out = tmp_path / "img"
    argv = ["--attack", str(attack), "--matrix", str(saved), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *argv, "--chromium", chromium],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"timeline.png: {vulnerable_race.verdict.summary}" in done.stdout
    width, height = png_size(out / "timeline.png")
    assert width == 2000  # the plot, 1000 CSS pixels wide at twice the density
    assert height > 600
    width, height = png_size(out / "heatmap.png")
    assert width == 2000
    assert height > 400
