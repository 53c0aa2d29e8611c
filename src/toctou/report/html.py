"""The HTML report: one self-contained file per saved attack or matrix, from Jinja2 templates.

Works offline: plotly.js is inlined once, figures are JSON in ``<script type="application/json">``
blocks drawn by a small inline loader, and a Content-Security-Policy allows those two scripts
(by hash) and nothing from the network. Text from the target is escaped by the templates'
autoescape in the page and by :func:`_script_json` inside the figure data.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import plotly
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from toctou import __version__
from toctou.engine.result import RaceResult, RoundResult, Spread
from toctou.matrix.result import LabRun, MatrixCell, MatrixResult
from toctou.report.command import Reproduction, attack_command, serve_command
from toctou.report.evidence import (
    RequestRow,
    ResponseGroup,
    StateChange,
    attack_sentence,
    drawn_round,
    request_rows,
    response_groups,
    state_changes,
)
from toctou.report.figures import Figure, heatmap_figure, throughput_figure, timeline_figure

__all__ = ["render_attack_html", "render_html", "render_matrix_html", "write_html"]

_BODY_CHARS = 600


@dataclass(frozen=True, slots=True)
class Plot:
    """A figure's JSON, safe inside a ``<script>`` element, and the id the page draws it by."""

    id: str
    json: Markup


@dataclass(frozen=True, slots=True)
class RaceSection:
    """Everything the race macro shows of one race (an attack, or a matrix cell's sample)."""

    result: RaceResult
    round: RoundResult
    anchor: str
    why_this_round: str
    rows: list[RequestRow]
    round_rows: list[RoundResult]
    groups: list[ResponseGroup]
    timeline: Plot
    reproduction: Reproduction
    serve: str | None = None

    @property
    def has_arrivals(self) -> bool:
        return any(row.arrival_ms is not None for row in self.rows)

    @property
    def probe(self) -> str | None:
        probe = self.result.plan.oracle.probe
        if probe is None:
            return None
        return f"{probe.json_path} of {probe.request.method} {probe.request.url}"


@dataclass(frozen=True, slots=True)
class CellSection:
    cell: MatrixCell
    sentence: str
    changes: list[StateChange]
    race: RaceSection | None


@dataclass
class _Plots:
    """The figures of one page, numbered in the order the page shows them."""

    plots: list[Plot] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def add(self, figure: Figure) -> Plot:
        text = json.dumps(figure, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        plot = Plot(f"figure-{next(self._ids)}", _script_json(text))
        self.plots.append(plot)
        return plot


def _script_json(text: str) -> Markup:
    """JSON that cannot end its ``<script>`` element or open a comment: ``<``, ``>`` and ``&``
    (and the JavaScript line separators) as ``\\u`` escapes, which JSON reads back unchanged.
    Those characters only occur inside JSON strings, so the escapes are always valid there."""
    for char in ("&", "<", ">", "\u2028", "\u2029"):
        text = text.replace(char, f"\\u{ord(char):04x}")
    return Markup(text)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def _spread(spread: Spread | None) -> str:
    return "-" if spread is None else f"{spread.range_ns / 1e6:.3f} ms"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _truncate_body(text: str) -> str:
    return text if len(text) <= _BODY_CHARS else text[:_BODY_CHARS] + " …"


def _unjudged_reason(r: RoundResult) -> str:
    if r.reset_error or r.probe_error or r.batch_error:
        return r.reset_error or r.probe_error or r.batch_error or ""
    return f"{r.errors} request(s) failed" if r.errors else ""


def _round_state(r: RoundResult) -> str:
    return "broken" if r.violations else "hold" if r.judged else "unjudged"


_TONES = {"race": "race", "racy": "race", "safe": "ok", "no_race_observed": "ok"}


def _tone(verdict: str) -> str:
    return _TONES.get(verdict, "unsure")


_FILTERS: dict[str, Callable[..., str]] = {
    "ms": _ms,
    "spread": _spread,
    "number": _number,
    "truncate_body": _truncate_body,
    "unjudged_reason": _unjudged_reason,
    "round_state": _round_state,
    "verdict_tone": _tone,
}


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("toctou.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(_FILTERS)
    return env


def _digest(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


@cache
def _scripts() -> tuple[Markup, Markup, str]:
    """plotly.js, the loader, and the Content-Security-Policy that allows just those two."""
    plotly_js = get_plotlyjs()
    if "</script" in plotly_js.lower():  # would end its element early; plotly.js has none
        raise RuntimeError("this plotly.js cannot be inlined in a <script> element")
    loader_js = _environment().get_template("report.js").render()
    csp = (
        "default-src 'none'; "
        f"script-src {_digest(plotly_js)} {_digest(loader_js)}; "
        "style-src 'unsafe-inline'; img-src data: blob:; "
        "base-uri 'none'; form-action 'none'"
    )
    return Markup(plotly_js), Markup(loader_js), csp


def _page(template: str, plots: _Plots, **context: Any) -> str:
    plotly_js, loader_js, csp = _scripts()
    return (
        _environment()
        .get_template(template)
        .render(
            plots=plots.plots,
            plotly_js=plotly_js,
            loader_js=loader_js,
            csp=csp,
            version=__version__,
            plotly_version=_plotly_js_version(),
            **context,
        )
    )


@cache
def _plotly_js_version() -> str:
    head = get_plotlyjs()[:200]
    marker = "plotly.js v"
    start = head.find(marker)
    return (
        head[start + len(marker) :].split()[0] if start >= 0 else f"(plotly {plotly.__version__})"
    )


def _why(result: RaceResult, r: RoundResult) -> str:
    if len(result.rounds) == 1:
        return "The race ran one round."
    if r.violations:
        return f"Round {r.index + 1} is drawn: the racy round with the most successes."
    return f"Round {r.index + 1} is drawn: no round broke an invariant; it had the most successes."


def _timeline_title(result: RaceResult, r: RoundResult, rows: list[RequestRow]) -> str:
    counts = {kind: sum(row.outcome == kind for row in rows) for kind in ("won", "rejected")}
    errors = len(rows) - sum(counts.values())
    sent = {(q.method, urlsplit(q.url).path) for q in result.plan.requests}
    what = " ".join(sent.pop()) + f" x{len(rows)}" if len(sent) == 1 else f"{len(rows)} requests"
    title = f"{what}: {counts['won']} won, {counts['rejected']} rejected, {errors} errors"
    if len(result.rounds) > 1:
        title = f"Round {r.index + 1} of {len(result.rounds)}: {title}"
    probe = result.plan.oracle.probe
    if probe is not None and r.probe_before is not None:
        title += f"; {probe.json_path} {_number(r.probe_before)} → {_number(r.probe_after)}"
    return title


def _race_section(
    result: RaceResult, plots: _Plots, *, anchor: str, command: str | None, serve: str | None
) -> RaceSection | None:
    r = drawn_round(result)
    if r is None:
        return None
    rows = request_rows(r)
    return RaceSection(
        result=result,
        round=r,
        anchor=anchor,
        why_this_round=_why(result, r),
        rows=rows,
        round_rows=[*([result.baseline] if result.baseline else []), *result.rounds],
        groups=response_groups(result),
        timeline=plots.add(timeline_figure(r, title=_timeline_title(result, r, rows))),
        reproduction=Reproduction(command) if command else attack_command(result.plan),
        serve=serve,
    )


def render_attack_html(result: RaceResult, *, command: str | None = None) -> str:
    """The report of one ``toctou attack`` result: verdict, timeline of its worst round, state,
    rounds, answers grouped by shape, requests, and ``command`` (else one rebuilt from the
    plan) to reproduce it."""
    plots = _Plots()
    section = _race_section(result, plots, anchor="race", command=command, serve=None)
    return _page(
        "attack.html.j2",
        plots,
        title=f"toctou: {result.verdict.summary}",
        kind="toctou attack",
        sentence=attack_sentence(result),
        tone=_tone(result.verdict.outcome),
        result=result,
        section=section,
        reproduction=Reproduction(command) if command else attack_command(result.plan),
    )


def _cell_sentence(cell: MatrixCell) -> str:
    claim = f"the catalogue claims {cell.claimed} ({'safe' if cell.claimed_safe else 'racy'} here)"
    if cell.verdict == "errors":
        return f"Could not be judged; {claim}."
    judged = f"{cell.verdict.upper()}: the audit broke after {cell.rounds_affected} of " + (
        f"{len(cell.rounds)} round(s), worst damage {cell.worst_damage} {cell.damage_unit}"
    )
    verdict = "a SURPRISE" if cell.surprise else "as claimed"
    return f"{judged}; {claim}: {verdict}."


def _lab(result: MatrixResult, cell: MatrixCell) -> LabRun | None:
    return next(
        (lab for lab in result.labs if (lab.backend, lab.workers) == (cell.backend, cell.workers)),
        None,
    )


def _cell_section(result: MatrixResult, cell: MatrixCell, plots: _Plots) -> CellSection:
    race = None
    if cell.sample is not None:
        lab = _lab(result, cell)
        database = lab.database if lab and cell.backend != "sqlite" else None
        protocol = cell.protocol or cell.sample.protocol
        serve = serve_command(
            cell.sample.plan,
            workers=cell.workers,
            database=database,
            http2=protocol == "HTTP/2",
            redis=result.redis if "redis" in cell.needs else None,
        )
        race = _race_section(
            cell.sample, plots, anchor=f"cell-{cell.key}", command=None, serve=serve
        )
    changes = (
        state_changes(cell.state_before, cell.state_after)
        if cell.state_before is not None or cell.state_after is not None
        else []
    )
    return CellSection(cell, _cell_sentence(cell), changes, race)


def render_matrix_html(result: MatrixResult) -> str:
    """The report of a ``toctou matrix`` result: its verdict, the heat-map (each cell linking to
    its detail), throughput bars, and every cell's rounds, audit state and race timeline."""
    plots = _Plots()
    heatmap = plots.add(heatmap_figure(result)) if result.cells else None
    bars = throughput_figure(result)
    throughput = plots.add(bars) if bars is not None else None
    cells = [_cell_section(result, cell, plots) for cell in result.cells]
    tone = {0: "ok", 1: "race"}.get(result.exit_code, "unsure")
    return _page(
        "matrix.html.j2",
        plots,
        title=f"toctou matrix: {result.summary}",
        kind="toctou matrix",
        sentence=result.summary,
        tone=tone,
        result=result,
        command=shlex.join(result.command),
        heatmap=heatmap,
        throughput=throughput,
        cells=cells,
    )


def render_html(result: RaceResult | MatrixResult) -> str:
    """The report of either kind of saved result."""
    if isinstance(result, MatrixResult):
        return render_matrix_html(result)
    return render_attack_html(result)


def write_html(result: RaceResult | MatrixResult, path: Path) -> None:
    path.write_text(render_html(result), encoding="utf-8")
