"""The HTML report shows what the saved result says: read back with the standard library's
parser, its verdict, tables and figure data are checked against the result."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import plotly.graph_objects as go
import pytest

from tests.report.hostile import BREAKOUT, HEADER, HOSTILE_ERROR, HOSTILE_STRATEGY, SCRIPT
from tests.report.page import Node, figure_of, figures, parse
from toctou.engine import RaceResult
from toctou.lab.process import LabProcess
from toctou.matrix.result import MatrixResult
from toctou.report import render_attack_html, render_html, render_matrix_html, write_html
from toctou.report.command import attack_command
from toctou.report.evidence import worker_pid


def timeline(root: Node, section: Node | None = None) -> dict[str, Any]:
    scope = section or root
    return figure_of(root, scope.find("section", class_="timeline").find("div", class_="plot"))


def traces(figure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in figure["data"]}


def test_attack_report_opens_with_the_verdict_sentence(vulnerable_race: RaceResult) -> None:
    root = parse(render_attack_html(vulnerable_race))
    header = root.find("header", class_="verdict")
    assert "tone-race" in header.attrs["class"]
    sentence = root.by_id("verdict").text()
    verdict = vulnerable_race.verdict
    assert sentence == f"{verdict.summary.rstrip('.')} ({verdict.evidence[0]})."
    assert sentence.startswith("RACE: invariants broken in ")
    assert "at most 1 expected" in sentence
    assert root.find("title").text() == f"toctou: {vulnerable_race.verdict.summary}"


def test_timeline_has_one_lane_per_request_with_its_times(
    vulnerable_race: RaceResult, sqlite_lab: LabProcess
) -> None:
    root = parse(render_attack_html(vulnerable_race))
    figure = timeline(root)
    drawn = max(vulnerable_race.rounds, key=lambda r: (r.successes, -r.index))
    attempts = sorted(drawn.attempts, key=lambda a: a.index)
    lanes = [f"#{a.index} · {a.status} · pid {worker_pid(a)}" for a in attempts]
    layout = figure["layout"]
    assert isinstance(layout, dict)
    assert layout["yaxis"]["categoryarray"] == lanes
    assert {worker_pid(a) for a in attempts} <= {str(pid) for pid in sqlite_lab.worker_pids}
    by_name = traces(figure)
    won = f"won ({drawn.successes})"
    assert drawn.successes >= 2  # a racy round: the fixture's race was judged RACE
    assert set(by_name) >= {won, "released", "first byte", "done", "arrived (server clock)"}
    t0 = min(a.released_ns or 0 for a in attempts)
    released = by_name["released"]
    assert released["y"] == lanes
    assert released["x"] == pytest.approx([((a.released_ns or 0) - t0) / 1e6 for a in attempts])
    done = by_name["done"]
    assert done["x"] == pytest.approx([((a.completed_ns or 0) - t0) / 1e6 for a in attempts])
    s0 = min(a.server_arrival_ns or 0 for a in attempts)
    arrived = by_name["arrived (server clock)"]
    assert arrived["x"] == pytest.approx(
        [((a.server_arrival_ns or 0) - s0) / 1e6 for a in attempts]
    )
    assert arrived["xaxis"] == "x2"
    spread = drawn.arrival_spread
    assert spread is not None
    (band,) = layout["shapes"]
    assert band["x1"] == pytest.approx(spread.range_ns / 1e6)
    assert f"arrival spread {spread.range_ns / 1e6:.2f} ms" in layout["annotations"][0]["text"]
    rejected = sum(a.status is not None and not a.success for a in attempts) - drawn.errors
    assert layout["title"]["text"].endswith(
        f"{drawn.successes} won, {rejected} rejected, {drawn.errors} errors; $.stock 1 → 0"
    )


def test_timeline_colours_outcomes(atomic_race: RaceResult) -> None:
    figure = timeline(parse(render_attack_html(atomic_race)))
    by_name = traces(figure)
    assert by_name["won (1)"]["line"]["color"] == "#2e9e48"
    assert by_name["rejected (9)"]["line"]["color"] == "#e3a21a"
    assert not any(name.startswith("error") for name in by_name)


def test_hover_shows_who_read_what(vulnerable_race: RaceResult) -> None:
    figure = timeline(parse(render_attack_html(vulnerable_race)))
    hovers = traces(figure)["done"]["hovertext"]
    assert isinstance(hovers, list)
    assert all('"status":"purchased"' in h for h in hovers)
    assert all("arrived +" in h and "(server clock)" in h for h in hovers)


def test_attack_tables_say_what_the_result_says(vulnerable_race: RaceResult) -> None:
    root = parse(render_attack_html(vulnerable_race))
    rounds = root.find("section", class_="rounds").cells()
    assert [row[:4] for row in rounds] == [
        [str(r.index + 1), str(r.successes), str(r.errors), "1 → 0"] for r in vulnerable_race.rounds
    ]
    assert all("broken" in row[-1] and "lost update" in row[-1] for row in rounds)
    requests = root.find("section", class_="requests").cells()
    drawn = max(vulnerable_race.rounds, key=lambda r: (r.successes, -r.index))
    attempts = sorted(drawn.attempts, key=lambda a: a.index)
    assert [row[:3] for row in requests] == [
        [str(i), str(a.index), str(a.status)] for i, a in enumerate(attempts)
    ]
    groups = root.find("section", class_="responses").cells()
    won = [row for row in groups if row[:2] == ["201", "won"]]
    assert len(won) == 1
    answers = [a for r in vulnerable_race.rounds for a in r.attempts]
    assert won[0][3] == str(sum(a.status == 201 for a in answers))  # both rounds' answers
    state = root.find("section", class_="state").text()
    first = vulnerable_race.rounds[0]
    assert f"read 1 before round 1 and 0 after it, with {first.successes} successes" in state


def test_answers_are_grouped_by_status_and_shape(atomic_race: RaceResult) -> None:
    groups = parse(render_attack_html(atomic_race)).find("section", class_="responses").cells()
    assert [(g[0], g[1], g[3]) for g in groups] == [("409", "rejected", "18"), ("201", "won", "2")]
    assert groups[0][2] == '{message: str, reason: "out_of_stock", status: "rejected"}'


def test_answers_beside_the_baseline(baseline_race: RaceResult) -> None:
    section = parse(render_attack_html(baseline_race)).find("section", class_="responses")
    assert [th.text() for th in section.find_all("th")][3:5] == ["in parallel", "one by one"]
    assert [(g[0], g[3], g[4]) for g in section.cells()] == [("409", "9", "9"), ("201", "1", "1")]
    rounds = parse(render_attack_html(baseline_race)).find("section", class_="rounds").cells()
    assert [r[0] for r in rounds] == ["baseline", "1"]


def test_reproduce_shows_the_command(vulnerable_race: RaceResult) -> None:
    root = parse(render_attack_html(vulnerable_race))
    shown = root.find("section", class_="reproduce").find("pre", class_="command")
    assert shown.raw() == attack_command(vulnerable_race.plan).command
    given = parse(render_attack_html(vulnerable_race, command="toctou attack --config x.toml"))
    assert given.find("pre", class_="command").text() == "toctou attack --config x.toml"


def test_one_file_with_plotly_inlined_once_and_nothing_from_the_network(
    vulnerable_race: RaceResult,
) -> None:
    html = render_attack_html(vulnerable_race)
    root = parse(html)
    scripts = root.find_all("script")
    code = [s for s in scripts if "type" not in s.attrs]
    assert len(code) == 2  # plotly.js and the loader
    assert html.count("* plotly.js v") == 1
    assert not any("src" in s.attrs for s in scripts)
    assert not root.find_all("link", rel="stylesheet")
    assert all(a.attrs["href"].startswith("#") for a in root.find_all("a"))
    (csp,) = [m for m in root.find_all("meta") if m.attrs.get("http-equiv")]
    policy = csp.attrs["content"]
    assert "default-src 'none'" in policy
    assert re.search(r"script-src 'sha256-[^']+' 'sha256-[^']+';", policy)


def test_script_in_a_target_s_answers_stays_text(hostile_race: RaceResult) -> None:
    html = render_attack_html(hostile_race)
    for hostile in (SCRIPT, BREAKOUT, HEADER, "<img"):
        assert hostile not in html
    root = parse(html)
    assert len(root.find_all("script")) == 2 + len(figures(root))  # every JSON block parsed
    assert not root.find_all("img")
    bodies = " ".join(row[-1] for row in root.find("section", class_="requests").cells())
    assert SCRIPT in bodies
    assert BREAKOUT in bodies
    hovers = " ".join(traces(timeline(root))["done"]["hovertext"])
    assert "&lt;script&gt;alert(&#x27;body&#x27;)&lt;/script&gt;" in hovers or (
        "&lt;script&gt;alert('body')&lt;/script&gt;" in hovers
    )
    assert "<script" not in hovers
    assert "buy?item=<1>" in root.find("header").text()


def test_matrix_report_opens_with_its_summary(matrix: MatrixResult) -> None:
    root = parse(render_matrix_html(matrix))
    assert root.by_id("verdict").text() == matrix.summary
    assert "1 SURPRISE(S)" in matrix.summary
    assert "1 could not be judged" in matrix.summary
    assert "tone-unsure" in root.find("header", class_="verdict").attrs["class"]
    assert root.find("pre", class_="command").text() == " ".join(matrix.command)


def test_heatmap_shows_every_cell(matrix: MatrixResult) -> None:
    root = parse(render_matrix_html(matrix))
    plot = root.by_id("heatmap").find("div", class_="plot")
    assert plot.attrs["data-links"] == "1"
    figure = figure_of(root, plot)
    damage, unjudged, surprises = figure["data"]
    layout = figure["layout"]
    assert isinstance(layout, dict)
    columns = layout["xaxis"]["ticktext"]
    rows = layout["yaxis"]["ticktext"]
    assert columns == ["sqlite x1", "postgresql x1", "mariadb x4"]
    assert rows[:3] == ["inventory · vulnerable", "inventory · atomic", "inventory · mutex"]
    assert rows[3] == "inventory · &lt;img src=x onerror=alert('strategy')&gt;"
    for cell in matrix.cells:
        i = rows.index("inventory · " + cell.strategy.replace("<", "&lt;").replace(">", "&gt;"))
        j = columns.index(f"{cell.backend} x{cell.workers}")
        layer = unjudged if cell.verdict == "errors" else damage
        assert layer["customdata"][i][j] == f"cell-{cell.key}"
        assert layer["text"][i][j] == (
            "errors" if cell.verdict == "errors" else str(cell.worst_damage)
        )
    assert damage["z"][0][0] > damage["z"][2][1] > damage["z"][1][0] == 0
    assert surprises["customdata"] == [f"cell-{matrix.surprises[0].key}"]


def test_every_cell_links_to_its_detail(matrix: MatrixResult) -> None:
    root = parse(render_matrix_html(matrix))
    links = [a.attrs["href"] for a in root.find("section", class_="cells").find_all("a")]
    assert links == [f"#cell-{c.key}" for c in matrix.cells]
    for cell in matrix.cells:
        detail = root.by_id(f"cell-{cell.key}")
        assert cell.strategy in detail.find("h2").text()
        plot = detail.find("section", class_="timeline").find("div", class_="plot")
        assert figure_of(root, plot)["data"]


def test_cell_detail_shows_state_claim_and_reproduction(matrix: MatrixResult) -> None:
    root = parse(render_matrix_html(matrix))
    cell = matrix.cells[0]
    detail = root.by_id(f"cell-{cell.key}")
    assert "worst damage 9 units sold that the stock did not have" in detail.text()
    assert "as claimed" in detail.find("p", class_="sentence").text()
    changed = {
        row[0]: (row[1], row[2]) for row in detail.find("table", class_="state-changes").cells()
    }
    assert changed["items[0].stock"] == ("1", "0")
    assert changed["items[0].units_sold"] == ("0", "10")
    serve, attack = [p.argv() for p in detail.find("section", class_="reproduce").find_all("pre")]
    port = str(urlsplit(cell.sample.plan.requests[0].url).port if cell.sample else None)
    assert serve == ["toctou", "serve", "--port", port, "--workers", "1"]
    assert attack[:3] == [
        "toctou",
        "attack",
        f"http://127.0.0.1:{port}/inventory/vulnerable/purchase",
    ]
    surprise = root.by_id(f"cell-{matrix.surprises[0].key}")
    assert "SURPRISE" in surprise.find("h2").text()
    serve = surprise.find("section", class_="reproduce").find("pre").argv()
    assert serve[-2:] == ["--db", "postgresql://u@db/test"]


def test_unjudged_cell_shows_its_error_as_text(matrix: MatrixResult) -> None:
    html = render_matrix_html(matrix)
    assert HOSTILE_ERROR not in html
    assert HOSTILE_STRATEGY not in html
    root = parse(html)
    (cell,) = matrix.unjudged
    detail = root.by_id(f"cell-{cell.key}")
    assert f"Could not be judged: {HOSTILE_ERROR}" in detail.text()
    assert not root.find_all("img")


def test_throughput_bars_per_backend_and_workers(matrix: MatrixResult) -> None:
    root = parse(render_matrix_html(matrix))
    figure = figure_of(root, root.by_id("throughput").find("div", class_="plot"))
    (bars,) = figure["data"]
    assert bars["name"] == "sqlite x1"
    assert bars["x"] == [450.0, 380.0]
    assert bars["y"] == ["inventory · vulnerable", "inventory · atomic"]


def test_render_html_and_write_html_take_either_result(
    matrix: MatrixResult, atomic_race: RaceResult, tmp_path: Path
) -> None:
    assert "toctou matrix" in render_html(matrix)
    path = tmp_path / "r.html"
    write_html(atomic_race, path)
    assert parse(path.read_text()).by_id("verdict").text().startswith("NO RACE OBSERVED")


def test_report_imports_no_rich_and_no_web_framework() -> None:
    code = (
        "import sys, toctou.report; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'rich', 'fastapi', 'starlette', 'sqlalchemy', 'uvicorn', 'typer', 'pytest'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_result_without_rounds_still_renders(vulnerable_race: RaceResult) -> None:
    root = parse(render_attack_html(replace(vulnerable_race, rounds=())))
    assert "No round ran" in root.find("main").text()
    assert root.find("pre", class_="command").raw().startswith("toctou attack ")
    assert figures(root) == {}


def test_every_figure_is_a_valid_plotly_figure(
    vulnerable_race: RaceResult, hostile_race: RaceResult, matrix: MatrixResult
) -> None:
    pages = [render_attack_html(vulnerable_race), render_attack_html(hostile_race)]
    pages.append(render_matrix_html(matrix))
    found = [f for page in pages for f in figures(parse(page)).values()]
    assert len(found) == 2 + 2 + len(matrix.cells)
    for figure in found:
        go.Figure(figure)  # raises ValueError on any property plotly does not know


def test_cells_not_run_are_listed(matrix: MatrixResult) -> None:
    skipped = matrix.model_copy(update={"skipped": ("inventory/redis-lock: <no Redis>",)})
    section = parse(render_matrix_html(skipped)).find("section", class_="skipped")
    assert section.find("li").text() == "inventory/redis-lock: <no Redis>"
    assert not parse(render_matrix_html(matrix)).find_all("section", class_="skipped")
