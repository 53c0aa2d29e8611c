"""The HTML report in a real headless browser: no console or script errors, no request but
the file itself, its plots drawn, each heat-map cell a link, and a target's script shown as
text, never run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report.browser import Browser, Visit, launch, visit
from tests.report.hostile import SCRIPT
from toctou.engine import RaceResult
from toctou.matrix.result import MatrixResult
from toctou.report import render_attack_html, render_matrix_html
from toctou.report.evidence import drawn_round, request_rows


@pytest.fixture
def browser() -> Iterator[Browser]:
    """One per test: Playwright's sync API runs an event loop, and while it does, fixtures
    set up after it (the races) could not run theirs."""
    with launch() as b:
        yield b


def assert_quiet(seen: Visit) -> None:
    assert seen.errors == []
    assert seen.dialogs == []
    assert seen.requests == [seen.url]  # nothing from the network, no other file


def traces_drawn(seen: Visit, selector: str) -> int:
    count: int = seen.page.locator(selector).evaluate(
        "el => el.querySelector('.js-plotly-plot').data.length"
    )
    return count


def test_attack_report_draws_its_timeline_offline(
    browser: Browser, vulnerable_race: RaceResult, tmp_path: Path
) -> None:
    seen = visit(browser, render_attack_html(vulnerable_race), tmp_path / "attack.html")
    assert seen.draw_all() == 1
    assert traces_drawn(seen, "section.timeline") == 5  # won, 3 sender events, arrivals
    lanes = seen.page.locator("section.timeline .yaxislayer-above .ytick text").all_text_contents()
    drawn = drawn_round(vulnerable_race)
    assert drawn is not None
    assert sorted(lanes) == sorted(row.label for row in request_rows(drawn))
    assert seen.page.locator("section.timeline .main-svg .shapelayer path").count() == 1
    assert seen.page.locator("#verdict").inner_text().startswith("RACE: invariants broken")
    assert_quiet(seen)


def test_matrix_report_draws_every_plot_and_links_cells(
    browser: Browser, matrix: MatrixResult, tmp_path: Path
) -> None:
    seen = visit(browser, render_matrix_html(matrix), tmp_path / "matrix.html")
    assert seen.draw_all() == 2 + len(matrix.cells)  # heat-map, throughput, a timeline each
    heatmap = seen.page.locator("#heatmap")
    assert traces_drawn(seen, "#heatmap") == 3
    assert heatmap.locator(".hm image").count() == 2  # the damage and the unjudged layers
    cell = matrix.cells[0]
    heatmap.scroll_into_view_if_needed()
    x, y = heatmap.locator(".js-plotly-plot").evaluate(
        """el => {
            const box = el.getBoundingClientRect(), l = el._fullLayout;
            return [box.left + l._size.l + l.xaxis.l2p(0), box.top + l._size.t + l.yaxis.l2p(0)];
        }"""
    )
    seen.page.mouse.click(x, y)
    seen.page.wait_for_url(f"{seen.url}#cell-{cell.key}", timeout=5_000)
    assert seen.page.locator(f"#cell-{cell.key}").is_visible()
    assert traces_drawn(seen, "#throughput") == 1
    assert_quiet(seen)


def test_script_in_answers_shows_as_text(
    browser: Browser, hostile_race: RaceResult, tmp_path: Path
) -> None:
    seen = visit(browser, render_attack_html(hostile_race), tmp_path / "hostile.html")
    seen.draw_all()
    page = seen.page
    assert SCRIPT in page.locator("section.requests").inner_text()
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 3  # plotly.js, the loader, one figure's JSON
    # The lane whose body holds <script>: hover its last byte and read plotly's hover label.
    (row,) = [r for r in request_rows(hostile_race.rounds[0]) if SCRIPT in r.body][:1]
    x, y = page.locator("section.timeline .js-plotly-plot").evaluate(
        """(el, [ms, lane]) => {
            const box = el.getBoundingClientRect(), l = el._fullLayout;
            return [box.left + l._size.l + l.xaxis.l2p(ms),
                    box.top + l._size.t + l.yaxis.l2p(l.yaxis.d2l(lane))];
        }""",
        [row.done_ms, row.label],
    )
    page.mouse.move(x, y)
    hover = page.locator(".hoverlayer .hovertext").first
    hover.wait_for(timeout=5_000)
    assert SCRIPT in (hover.text_content() or "")
    assert_quiet(seen)


def test_cell_with_script_in_its_name_and_error_stays_text(
    browser: Browser, matrix: MatrixResult, tmp_path: Path
) -> None:
    seen = visit(browser, render_matrix_html(matrix), tmp_path / "matrix.html")
    seen.draw_all()
    (cell,) = matrix.unjudged
    assert cell.error is not None
    detail = seen.page.locator("article.cell.verdict-errors")
    assert cell.error in detail.inner_text()
    assert cell.strategy in detail.locator("h2").inner_text()
    ticks = seen.page.locator("#heatmap .ytick text").all_text_contents()
    assert f"inventory · {cell.strategy}" in ticks
    assert seen.page.locator("img").count() == 0
    assert_quiet(seen)
