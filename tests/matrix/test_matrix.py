"""``toctou matrix`` against real labs: verdicts from the lab's audit, compared with the claims."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import backend_url, redis_url
from tests.report.page import figure_of, parse
from toctou.catalogue import fetch_catalogue
from toctou.lab.process import LabProcess
from toctou.matrix import MatrixCell, MatrixResult
from toctou.matrix.markdown import cell_text, render_markdown
from toctou.matrix.runner import MatrixOptions, matrix_cells, run_lab_cells, run_matrix
from toctou.report import render_matrix_html

# Two scenarios, two strategies whose claims do not depend on luck: the vulnerable one always
# shows its race with a race window, the atomic one never does.
SCENARIOS = ("inventory", "coupon")
STRATEGIES = ("vulnerable", "atomic")


def toctou(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toctou", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def small_matrix() -> MatrixResult:
    """SQLite and PostgreSQL, 1 and 2 workers, two scenarios, two strategies, 2 rounds."""
    options = MatrixOptions(
        databases=(None, backend_url("postgresql")),
        workers=(1, 2),
        scenarios=SCENARIOS,
        strategies=STRATEGIES,
        rounds=2,
        redis_url=redis_url(),
    )
    return run_matrix(options)


@pytest.mark.postgres
def test_small_matrix_matches_the_catalogue(small_matrix: MatrixResult) -> None:
    assert [lab.error for lab in small_matrix.labs] == [None] * 4
    assert {(lab.backend, lab.workers) for lab in small_matrix.labs} == {
        ("sqlite", 1), ("sqlite", 2), ("postgresql", 1), ("postgresql", 2),
    }  # fmt: skip
    assert len(small_matrix.cells) == 4 * len(SCENARIOS) * len(STRATEGIES)
    for cell in small_matrix.cells:
        assert cell.as_claimed, (cell.key, cell.verdict, cell.rounds)
        assert len(cell.rounds) == 2
        expected = "safe" if cell.strategy == "atomic" else "racy"
        assert cell.verdict == expected, cell.key
        if expected == "racy":
            assert cell.worst_damage > 0
            assert cell.rounds_affected >= 1
        else:
            assert (cell.worst_damage, cell.rounds_affected) == (0, 0)
        assert cell.sample is not None
        attempts = cell.sample.rounds[0].attempts
        assert len(attempts) >= 2
        assert sum(a.success for a in attempts) in {r.successes for r in cell.rounds}
        assert all(r.successes >= 1 for r in cell.rounds)
        assert cell.state_before is not None
        assert cell.state_after is not None
    assert small_matrix.exit_code == 0
    assert "as the catalogue claims" in small_matrix.summary
    versions = small_matrix.versions
    assert versions["postgresql server"].split(".")[0].isdigit()
    assert {"python", "toctou", "sqlalchemy", "httpx"} <= versions.keys()


@pytest.mark.postgres
def test_the_json_round_trips(small_matrix: MatrixResult) -> None:
    again = MatrixResult.from_json(small_matrix.to_json())
    assert again == small_matrix
    data = json.loads(small_matrix.to_json())
    assert data["schema_version"] == 1
    assert MatrixResult.is_matrix(data)


@pytest.mark.postgres
def test_markdown_shows_every_cell(small_matrix: MatrixResult) -> None:
    text = render_markdown(small_matrix)
    assert "| strategy | SQLite x1 | SQLite x2 | PostgreSQL x1 | PostgreSQL x2 |" in text
    for scenario in SCENARIOS:
        assert f"## {scenario} " in text
    for cell in small_matrix.cells:
        assert cell_text(cell) in text
    atomic_rows = [line for line in text.splitlines() if line.startswith("| atomic |")]
    assert atomic_rows == ["| atomic | SAFE | SAFE | SAFE | SAFE |"] * len(SCENARIOS)
    assert "SURPRISE" not in text.split("## Versions")[0].split("SURPRISE: not")[1]


@pytest.mark.postgres
def test_html_report_shows_what_the_json_says(small_matrix: MatrixResult) -> None:
    root = parse(render_matrix_html(small_matrix))
    assert root.by_id("verdict").text() == small_matrix.summary
    heatmap = figure_of(root, root.by_id("heatmap").find("div", class_="plot"))
    damage = heatmap["data"][0]
    drawn = {key for row in damage["customdata"] for key in row if key}
    assert drawn == {f"cell-{c.key}" for c in small_matrix.cells}
    for cell in small_matrix.cells:
        assert cell.sample is not None
        detail = root.by_id(f"cell-{cell.key}")
        plot = detail.find("section", class_="timeline").find("div", class_="plot")
        lanes = figure_of(root, plot)["layout"]["yaxis"]["categoryarray"]
        assert len(lanes) == len(cell.sample.rounds[0].attempts)
        commands = [p.argv() for p in detail.find("section", class_="reproduce").find_all("pre")]
        attack = next(argv for argv in commands if argv[:2] == ["toctou", "attack"])
        assert "--reset" in attack  # the round's reset, though the matrix sent it itself


def test_a_wrong_claim_is_a_surprise(sqlite_lab: LabProcess) -> None:
    """The catalogue as read, with the vulnerable strategy claimed safe and the atomic one
    claimed racy: both cells come out as SURPRISE, and the matrix exits 1."""
    catalogue = fetch_catalogue(sqlite_lab.base_url)
    info = catalogue["inventory"]
    lying = {
        "vulnerable": {"sqlite": "always", "postgresql": "always", "mariadb": "always"},
        "atomic": {"sqlite": "never", "postgresql": "never", "mariadb": "never"},
    }
    strategies = tuple(
        s.model_copy(update={"holds": lying[s.name]}) if s.name in lying else s
        for s in info.strategies
    )
    wrong = info.model_copy(update={"strategies": strategies})
    options = MatrixOptions(rounds=1, strategies=tuple(lying))
    selected = matrix_cells({"inventory": wrong}, options)
    cells = asyncio.run(run_lab_cells(sqlite_lab.base_url, "sqlite", 1, selected, options))
    assert [(c.strategy, c.verdict, c.surprise) for c in cells] == [
        ("vulnerable", "racy", True),
        ("atomic", "safe", True),
    ]
    result = MatrixResult(cells=tuple(cells))
    assert result.exit_code == 1
    assert "2 SURPRISE(S)" in result.summary
    assert render_markdown(result).split("## Cells to look at")[0].count("SURPRISE**") == 2


def test_filters_that_name_nothing_are_refused(tmp_path: Path) -> None:
    for args, message in (
        (("--scenario", "nope"), "no scenario 'nope'"),
        (("--strategy", "nope"), "no strategy 'nope'"),
        (("--workers", "0"), "worker counts go from 1 to 16"),
        (("--workers", "one"), "not a list of worker counts"),
        (("--technique", "telepathy"), "is not one of"),
        (("--out", str(tmp_path / "missing" / "m.json")), "no such directory"),
        (("--db", "foo://x"), "not a database URL the lab knows"),
        (("--db", str(tmp_path / "lab.db")), "not a database URL the lab knows"),
        (("--db", "sqlite", "--db", "sqlite"), "one database per backend"),
    ):
        done = toctou("matrix", "--workers", "1", *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_an_unreachable_database_is_exit_3(tmp_path: Path) -> None:
    done = toctou(
        "matrix", "--quick", "--workers", "1", "--scenario", "inventory",
        "--db=postgresql://nobody:secret@127.0.0.1:1/test?password=secret", "--out", "m.json",
        "--markdown", "m.md",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "did not start" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    saved = MatrixResult.from_json((tmp_path / "m.json").read_text())
    assert saved.cells == ()
    assert saved.labs[0].error
    assert "secret" not in (tmp_path / "m.json").read_text()
    assert "secret" not in (tmp_path / "m.md").read_text()
    assert "--db=postgresql://nobody:***@127.0.0.1:1/test?password=***" in saved.command


def test_quick_matrix_from_the_command_line(tmp_path: Path) -> None:
    done = toctou(
        "matrix", "--quick", "--workers", "1", "--scenario", "wallet", "--out", "m.json",
        "--markdown", "m.md", "--throughput", "0.3",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    saved = MatrixResult.from_json((tmp_path / "m.json").read_text())
    assert saved.command[:2] == ("toctou", "matrix")
    assert "--quick" in saved.command
    by_strategy: dict[str, MatrixCell] = {c.strategy: c for c in saved.cells}
    assert by_strategy["vulnerable"].verdict == "racy"
    assert by_strategy["atomic"].verdict == "safe"
    assert all(len(c.rounds) == 1 for c in saved.cells)
    loaded = by_strategy["atomic"].throughput
    assert loaded is not None
    assert loaded.requests > 0
    assert loaded.successes > 0
    assert loaded.p50_ms <= loaded.p99_ms
    assert by_strategy["vulnerable"].throughput is None  # only cells claimed safe get a load
    markdown = (tmp_path / "m.md").read_text()
    assert "## wallet" in markdown
    assert "## Throughput under contention" in markdown
    assert "wallet / atomic" in done.stdout
