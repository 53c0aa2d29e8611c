"""The report's plotly figures: a round's timeline, the matrix heat-map and throughput bars.

Each is a plotly figure in its JSON form (``{"data": [...], "layout": {...}}``), drawn by the
inlined plotly.js. They are built as plain dicts, not ``plotly.graph_objects``: those validate
every property as it is set, ~40 ms per timeline, which a matrix of hundreds of cells would
pay hundreds of times; the tests validate every figure with ``plotly.graph_objects.Figure``.

Every text that came from a target (bodies, errors) or from a saved result is HTML-escaped
before it goes into a figure: plotly renders its labels and hover texts as a small subset of
HTML, so escaped text shows as written and cannot become markup.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence
from typing import Any

from toctou.engine.result import RoundResult
from toctou.matrix.result import MatrixCell, MatrixResult
from toctou.report.evidence import OUTCOMES, RequestRow, request_rows

__all__ = ["COLOURS", "Figure", "heatmap_figure", "throughput_figure", "timeline_figure"]

Figure = dict[str, Any]
COLOURS = {"won": "#2e9e48", "rejected": "#e3a21a", "error": "#d43a2f"}
INK = "#1f2328"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
_BACKENDS = ("sqlite", "postgresql", "mariadb")
_BODY_WRAP, _BODY_LINES = 72, 6
_MANY_LANES = 60  # past this, lanes are not labelled (hover still names each)
_AXIS = {"gridcolor": "#e4e6ea", "zerolinecolor": "#b8bcc4", "automargin": True}


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _body_hover(text: str) -> str:
    """A body for a hover: escaped, wrapped, at most a few lines."""
    flat = " ".join(text.split())
    lines = textwrap.wrap(flat, _BODY_WRAP, max_lines=_BODY_LINES, placeholder=" …") or [""]
    return "<br>".join(_escape(line) for line in lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f} ms"


def _lane_hover(row: RequestRow) -> str:
    status = "no answer" if row.status is None else str(row.status)
    head = f"<b>#{row.index}</b> · {status} {row.outcome} · connection {row.connection}"
    if row.worker:
        head += f" · worker {row.worker}"
    lines = [
        head,
        f"released {_ms(row.released_ms)} · first byte {_ms(row.first_byte_ms)} · "
        f"done {_ms(row.done_ms)}",
    ]
    if row.arrival_ms is not None:
        lines.append(f"arrived {_ms(row.arrival_ms)} after the first arrival (server clock)")
    if row.error:
        lines.append("error: " + _body_hover(row.error))
    if row.body:
        lines.append(_body_hover(row.body))
    return "<br>".join(lines)


def _layout(*, title: str, height: int, **axes: Any) -> dict[str, Any]:
    return {
        "title": {"text": _escape(title), "x": 0.01, "xanchor": "left", "font": {"size": 16}},
        "font": {"family": FONT, "size": 12, "color": INK},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#fbfbfc",
        "height": height,
        "margin": {"l": 10, "r": 20, "t": 90, "b": 76},
        "hoverlabel": {"align": "left", "font": {"family": FONT, "size": 12}},
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
        **axes,
    }


def _bars(rows: Sequence[RequestRow], labels: dict[int, str]) -> list[dict[str, Any]]:
    """One line trace per outcome: each request from its release to its last byte."""
    traces = []
    for kind in OUTCOMES:
        mine = [r for r in rows if r.outcome == kind]
        xs: list[float | None] = []
        ys: list[str | None] = []
        for r in mine:
            end = r.done_ms if r.done_ms is not None else r.first_byte_ms
            if r.released_ms is not None and end is not None:
                xs += [r.released_ms, end, None]
                ys += [labels[r.index], labels[r.index], None]
        if mine:
            traces.append(
                {
                    "type": "scatter",
                    "x": xs,
                    "y": ys,
                    "mode": "lines",
                    "legendgroup": kind,
                    "name": f"{kind} ({len(mine)})",
                    "line": {"color": COLOURS[kind], "width": 9},
                    "opacity": 0.85,
                    "hoverinfo": "skip",
                }
            )
    return traces


# name, RequestRow field, marker symbol, size, fill, outline width
_EVENTS = (
    ("released", "released_ms", "line-ns-open", 16, INK, 2.5),
    ("first byte", "first_byte_ms", "diamond", 11, "#ffffff", 1.5),
    ("done", "done_ms", "circle", 6, INK, 0),
)


def _events(rows: Sequence[RequestRow], labels: dict[int, str]) -> list[dict[str, Any]]:
    """Markers for the sender's instants, each with the request's full hover."""
    traces = []
    for name, field, symbol, size, fill, width in _EVENTS:
        points = [r for r in rows if getattr(r, field) is not None]
        marker = {
            "symbol": symbol,
            "size": size,
            "color": fill,
            "line": {"color": INK, "width": width},
        }
        traces.append(
            {
                "type": "scatter",
                "x": [getattr(r, field) for r in points],
                "y": [labels[r.index] for r in points],
                "mode": "markers",
                "name": name,
                "marker": marker,
                "hovertext": [_lane_hover(r) for r in points],
                "hoverinfo": "text",
            }
        )
    return traces


def _arrivals(rows: Sequence[RequestRow], labels: dict[int, str]) -> dict[str, Any]:
    points = [r for r in rows if r.arrival_ms is not None]
    marker = {
        "symbol": "triangle-right",
        "size": 11,
        "line": {"color": INK, "width": 1},
        "color": [COLOURS[r.outcome] for r in points],
    }
    return {
        "type": "scatter",
        "x": [r.arrival_ms for r in points],
        "xaxis": "x2",
        "yaxis": "y2",
        "y": [labels[r.index] for r in points],
        "mode": "markers",
        "marker": marker,
        "name": "arrived (server clock)",
        "hovertext": [_lane_hover(r) for r in points],
        "hoverinfo": "text",
    }


def _spread_band(r: RoundResult, rows: Sequence[RequestRow]) -> dict[str, Any]:
    """The arrival spread, shaded on the server's axis, and its label."""
    arrived = [row.arrival_ms for row in rows if row.arrival_ms is not None]
    width = r.arrival_spread.range_ns / 1e6 if r.arrival_spread else max(arrived) - min(arrived)
    if width <= 0:
        return {}
    band = {
        "type": "rect",
        "xref": "x2",
        "yref": "y2 domain",
        "x0": 0,
        "x1": width,
        "y0": 0,
        "y1": 1,
        "fillcolor": "#3d6fd1",
        "opacity": 0.13,
        "line": {"width": 0},
        "layer": "below",
    }
    label = {
        "text": f"arrival spread {width:.2f} ms",
        "xref": "x2",
        "yref": "y2 domain",
        "x": 0,
        "y": 1,
        "xanchor": "left",
        "yanchor": "top",
        "showarrow": False,
        "font": {"size": 11, "color": "#2d55a8"},
    }
    return {"shapes": [band], "annotations": [label]}


def timeline_figure(r: RoundResult, *, title: str) -> Figure:
    """One lane per request of round ``r``: its release, first byte and last byte on the
    sender's clock (ms after the first release), coloured by outcome, and beside them its
    arrival on the server's clock (ms after the first arrival) with the arrival spread shaded.

    The two clocks are not aligned: the server stamps wall-clock time, the sender a monotonic
    counter, so the arrivals get their own axis rather than a guessed offset.
    """
    rows = request_rows(r)
    labels = {row.index: row.label for row in rows}
    lanes = {
        "type": "category",
        "categoryorder": "array",
        "autorange": "reversed",
        "categoryarray": list(labels.values()),
        "gridcolor": "#eef0f3",
        "automargin": True,
    }
    sender = {**_AXIS, "title": {"text": "ms after the first release (sender clock)"}}
    axes: dict[str, Any] = {
        "xaxis": sender,
        "yaxis": {**lanes, "showticklabels": len(rows) <= _MANY_LANES},
    }
    data = [*_bars(rows, labels), *_events(rows, labels)]
    if any(row.arrival_ms is not None for row in rows):
        axes["xaxis"] = {**sender, "domain": [0, 0.715], "anchor": "y"}
        axes["xaxis2"] = {
            **_AXIS,
            "domain": [0.74, 1],
            "anchor": "y2",
            "title": {"text": "ms after the first arrival<br>(server clock)"},
        }
        axes["yaxis2"] = {**lanes, "anchor": "x2", "matches": "y", "showticklabels": False}
        axes.update(_spread_band(r, rows))
        data.append(_arrivals(rows, labels))
    height = min(150 + 26 * len(rows), 1600)
    return {"data": data, "layout": _layout(title=title, height=height, **axes)}


def _columns(cells: Sequence[MatrixCell]) -> list[tuple[str, int]]:
    found = {(c.backend, c.workers) for c in cells}
    return sorted(found, key=lambda k: (_BACKENDS.index(k[0]), k[1]))


def _rows(cells: Sequence[MatrixCell]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((c.scenario, c.strategy) for c in cells))


def _damage_z(damage: int) -> float:
    return math.log10(1 + max(damage, 0))


def _cell_hover(c: MatrixCell) -> str:
    lines = [
        f"<b>{_escape(c.scenario)} · {_escape(c.strategy)}</b> on {c.backend} x{c.workers}",
        f"verdict: {c.verdict}"
        + (" · SURPRISE: not as the catalogue claims" if c.surprise else ""),
        f"claimed: {c.claimed} ({'safe' if c.claimed_safe else 'racy'} here)",
        f"worst damage: {c.worst_damage} {_escape(c.damage_unit)}",
        f"rounds affected: {c.rounds_affected} of {len(c.rounds)}",
    ]
    if c.error:
        lines.append("error: " + _body_hover(c.error))
    return "<br>".join(lines) + "<br><i>click for the detail</i>"


Grid = dict[tuple[int, int], MatrixCell]


def _grid(
    cells: Sequence[MatrixCell], rows: list[tuple[str, str]], cols: list[tuple[str, int]]
) -> Grid:
    return {
        (rows.index((c.scenario, c.strategy)), cols.index((c.backend, c.workers))): c for c in cells
    }


def _layer(grid: Grid, shape: tuple[int, int], *, errors: bool) -> dict[str, Any]:
    """A heat-map layer: the judged cells (z from their damage) or the unjudged ones (z 1);
    None where a cell is in the other layer or was not run."""
    rows, cols = shape
    z: list[list[float | None]] = [[None] * cols for _ in range(rows)]
    text, hover, keys = ([[""] * cols for _ in range(rows)] for _ in range(3))
    for (i, j), c in grid.items():
        if (c.verdict == "errors") == errors:
            z[i][j] = 1.0 if errors else _damage_z(c.worst_damage)
            text[i][j] = "errors" if errors else str(c.worst_damage)
            hover[i][j], keys[i][j] = _cell_hover(c), f"cell-{c.key}"
    return {
        "type": "heatmap",
        "z": z,
        "text": text,
        "hovertext": hover,
        "customdata": keys,
        "hoverinfo": "text",
        "texttemplate": "%{text}",
        "xgap": 3,
        "ygap": 3,
        "hoverongaps": False,
    }


def _unjudged(grid: Grid, shape: tuple[int, int]) -> dict[str, Any]:
    grey = [[0, "#a3a8b0"], [1, "#a3a8b0"]]
    return {
        **_layer(grid, shape, errors=True),
        "colorscale": grey,
        "showscale": False,
        "zmin": 0,
        "zmax": 1,
        "name": "could not be judged",
        "showlegend": any(c.verdict == "errors" for c in grid.values()),
    }


def _damage_colours(one: float) -> list[tuple[float, str]]:
    """Green for no damage (up to half way to 1), then pale orange to deep red."""
    half = one / 2
    return [
        (0, "#e3f2e6"),
        (half, "#e3f2e6"),
        (half, "#fde6c4"),
        ((1 + half) / 2, "#f2994a"),
        (1, "#b3261e"),
    ]


def _damage(grid: Grid, shape: tuple[int, int]) -> dict[str, Any]:
    worst = max((c.worst_damage for c in grid.values() if c.verdict != "errors"), default=0)
    steps = [d for d in (0, 1, 3, 10, 30, 100, 300, 1000, 10_000, 100_000) if d < worst * 0.8]
    ticks = [*steps, max(worst, 1)]
    top = _damage_z(max(worst, 1))
    colorbar = {
        "title": {"text": "worst damage"},
        "tickvals": [_damage_z(d) for d in ticks],
        "ticktext": [str(d) for d in ticks],
        "thickness": 14,
    }
    return {
        **_layer(grid, shape, errors=False),
        "zmin": 0,
        "zmax": top,
        "name": "worst damage",
        "colorscale": _damage_colours(_damage_z(1) / top),
        "colorbar": colorbar,
    }


def _surprises(grid: Grid) -> dict[str, Any]:
    spots = [(i, j, c) for (i, j), c in grid.items() if c.surprise]
    marker = {
        "symbol": "star",
        "size": 15,
        "color": "#7b2cbf",
        "line": {"color": "#ffffff", "width": 1},
    }
    return {
        "type": "scatter",
        "x": [j + 0.36 for _, j, _ in spots],
        "y": [i - 0.28 for i, _, _ in spots],
        "mode": "markers",
        "marker": marker,
        "name": "SURPRISE: not as the catalogue claims",
        "showlegend": bool(spots),
        "hoverinfo": "text",
        "hovertext": [_cell_hover(c) for _, _, c in spots],
        "customdata": [f"cell-{c.key}" for _, _, c in spots],
    }


def heatmap_figure(result: MatrixResult) -> Figure:
    """Scenario x strategy against backend x workers; colour is the cell's worst damage (in its
    scenario's own unit, log scale), grey where the cell could not be judged, a star on each
    surprise. Every cell carries ``cell-<key>`` as customdata: the id of its detail."""
    cells = result.cells
    rows, cols = _rows(cells), _columns(cells)
    grid = _grid(cells, rows, cols)
    shape = (len(rows), len(cols))
    xaxis = {
        "tickvals": list(range(len(cols))),
        "ticktext": [f"{b} x{w}" for b, w in cols],
        "side": "top",
        "range": [-0.5, len(cols) - 0.5],
        "showgrid": False,
        "zeroline": False,
        "automargin": True,
    }
    yaxis = {
        "tickvals": list(range(len(rows))),
        "ticktext": [f"{_escape(s)} · {_escape(t)}" for s, t in rows],
        "range": [len(rows) - 0.5, -0.5],
        "showgrid": False,
        "zeroline": False,
        "automargin": True,
    }
    layout = _layout(
        title="Worst damage per cell, in each scenario's own unit",
        height=170 + 36 * len(rows),
        xaxis=xaxis,
        yaxis=yaxis,
    )
    layout["margin"]["t"] = 110
    layout["legend"].update(y=-0.02, yanchor="top")
    layout["showlegend"] = True
    return {
        "data": [_damage(grid, shape), _unjudged(grid, shape), _surprises(grid)],
        "layout": layout,
    }


def _throughput_hover(c: MatrixCell) -> str:
    t = c.throughput
    assert t is not None
    return "<br>".join(
        [
            f"<b>{_escape(c.scenario)} · {_escape(c.strategy)}</b> on {c.backend} x{c.workers}",
            f"{t.per_second:.1f} answered/s, {t.successes_per_second:.1f} successes/s",
            f"p50 {t.p50_ms:.1f} ms · p99 {t.p99_ms:.1f} ms",
            f"{t.requests} requests from {t.clients} clients in {t.seconds:.1f} s, "
            f"{t.errors} errors",
        ]
    )


def throughput_figure(result: MatrixResult) -> Figure | None:
    """Answered requests per second of each measured cell, one bar colour per backend x workers;
    None when no cell was measured."""
    measured = [c for c in result.cells if c.throughput is not None]
    if not measured:
        return None
    data = []
    for backend, workers in _columns(measured):
        mine = [c for c in measured if (c.backend, c.workers) == (backend, workers)]
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": f"{backend} x{workers}",
                "y": [f"{_escape(c.scenario)} · {_escape(c.strategy)}" for c in mine],
                "x": [c.throughput.per_second for c in mine if c.throughput],
                "hovertext": [_throughput_hover(c) for c in mine],
                "hoverinfo": "text",
            }
        )
    layout = _layout(
        title="Throughput: answered requests per second",
        height=170 + 22 * len(_rows(measured)) * len(data),
        xaxis={**_AXIS, "title": {"text": "answered requests per second"}},
        yaxis={"autorange": "reversed", "automargin": True},
        barmode="group",
    )
    return {"data": data, "layout": layout}
