"""``toctou matrix``: which fix holds on which database with how many workers, measured.

Exit codes: 0 every cell as the catalogue claims, 1 a cell surprised, 2 usage error, 3 a lab did
not start or a cell could not be judged.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from toctou.cli.attack import _check_report_path
from toctou.cli.console import console, fail
from toctou.engine.plan import TECHNIQUES, Technique
from toctou.matrix import MatrixCell, MatrixResult
from toctou.matrix.markdown import cell_text, render_markdown
from toctou.matrix.runner import (
    DEFAULT_ROUNDS,
    FilterError,
    MatrixOptions,
    backend_of,
    run_matrix,
)
from toctou.matrix.runner import (
    Progress as MatrixProgress,
)

__all__ = ["matrix", "render_matrix"]

EXIT_USAGE = 2


class _Bar(MatrixProgress):
    """The runner's progress as a Rich bar with an ETA."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=None)

    def total(self, cells: int) -> None:
        self.progress.update(self.task, total=cells)

    def lab(self, backend: str, workers: int) -> None:
        self.progress.update(self.task, description=f"{backend} x{workers}: starting the lab")

    def cell(self, cell: MatrixCell) -> None:
        self.progress.update(
            self.task,
            advance=1,
            description=f"{cell.backend} x{cell.workers}: {cell.scenario}/{cell.strategy}",
        )


def _style(cell: MatrixCell) -> str:
    if cell.surprise:
        return "bold magenta"
    return {"safe": "green", "racy": "red", "errors": "yellow"}[cell.verdict]


def render_matrix(result: MatrixResult) -> Table:
    """The matrix in the terminal: scenario/strategy rows, backend x workers columns."""
    columns = list(dict.fromkeys((c.backend, c.workers) for c in result.cells))
    table = Table(title="Which fix holds where", caption=result.summary)
    table.add_column("scenario / strategy")
    for backend, workers in columns:
        table.add_column(f"{backend} x{workers}")
    rows = dict.fromkeys((c.scenario, c.strategy) for c in result.cells)
    for scenario, strategy in rows:
        by_column = {
            (c.backend, c.workers): c
            for c in result.cells
            if (c.scenario, c.strategy) == (scenario, strategy)
        }
        table.add_row(
            f"{scenario} / {strategy}",
            *(
                f"[{_style(c)}]{cell_text(c).replace('**', '')}[/]"
                if (c := by_column.get(k))
                else "-"
                for k in columns
            ),
        )
    return table


def _workers(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(
            f"not a list of worker counts: {text!r} (e.g. 1,4)", param_hint="--workers"
        ) from None
    if not counts or any(not 1 <= n <= 16 for n in counts):
        raise typer.BadParameter("worker counts go from 1 to 16", param_hint="--workers")
    return counts


def matrix(
    db: Annotated[
        list[str] | None,
        typer.Option(
            "--db",
            help="A database URL (repeatable); 'sqlite' (the default): a fresh SQLite file.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        str, typer.Option(help="Worker process counts, comma-separated: one lab each.")
    ] = "1,4",
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this scenario (repeatable); default: every one.", show_default=False
        ),
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this strategy (repeatable); default: every one.", show_default=False
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, max=100, help="Rounds per cell.")] = DEFAULT_ROUNDS,
    window_ms: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=1000,
            help="The race window every request asks the lab for; default: each recipe's.",
            show_default=False,
        ),
    ] = None,
    technique: Annotated[
        str, typer.Option(help=f"How to synchronise: {', '.join(TECHNIQUES)}.")
    ] = "auto",
    requests: Annotated[
        int | None,
        typer.Option(
            min=2,
            max=200,
            help="Concurrent requests per round; default: each recipe's own.",
            show_default=False,
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Per scenario the vulnerable strategy, a fix and a per-process one; 1 round.",
        ),
    ] = False,
    throughput: Annotated[
        float,
        typer.Option(
            min=0,
            max=60,
            help="Seconds of load per cell claimed safe: successes/s and p50/p99 latency.",
        ),
    ] = 0.0,
    redis: Annotated[
        str | None,
        typer.Option(
            help="Redis URL for the strategies that need one; default: $TOCTOU_REDIS_URL.",
            envvar="TOCTOU_REDIS_URL",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the full result as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the matrix as Markdown.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report.")] = None,
) -> None:
    """Start the lab per database x workers and race every scenario x strategy of its catalogue.

    Each cell is judged by the lab's own audit after every round and compared with the
    catalogue's claim. Exit 0 when every cell is as claimed, 1 when one surprises, 3 when a lab
    did not start or a cell could not be judged.
    """
    try:
        for path, flag in ((out, "--out"), (markdown, "--markdown"), (html, "--html")):
            _check_report_path(path, flag)
        if technique not in TECHNIQUES:
            raise typer.BadParameter(
                f"{technique!r} is not one of {', '.join(TECHNIQUES)}", param_hint="--technique"
            )
        options = MatrixOptions(
            databases=_databases(db or ["sqlite"]),
            workers=_workers(workers),
            scenarios=tuple(scenario or ()),
            strategies=tuple(strategy or ()),
            rounds=rounds,
            window_ms=window_ms,
            technique=_technique(technique),
            requests=requests,
            quick=quick,
            throughput_s=throughput,
            redis_url=redis or None,
            command=("toctou", "matrix", *sys.argv[2:]),
        )
    except typer.BadParameter as exc:
        fail(exc.format_message(), code=EXIT_USAGE)
    try:
        import toctou.lab.process  # noqa: F401 - the lab extra, which starts the labs
    except ImportError:
        fail("the matrix needs the lab: pip install 'toctou[lab]'", code=EXIT_USAGE)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress:
            result = run_matrix(options, _Bar(progress))
    except FilterError as exc:
        fail(str(exc), code=EXIT_USAGE)
    if result.cells:
        console.print(render_matrix(result))
    for lab in result.labs:
        if lab.error:
            console.print(f"[yellow]lab {lab.backend} x{lab.workers} did not start:[/] {lab.error}")
    for line in result.skipped:
        console.print(f"[yellow]not run:[/] {line}")
    for cell in result.unjudged:
        console.print(
            f"[yellow]{cell.scenario}/{cell.strategy} on {cell.backend} x{cell.workers} "
            f"could not be judged:[/] {cell.error}"
        )
    _write(result, out, markdown, html)
    console.print(result.summary)
    raise typer.Exit(result.exit_code)


def _databases(urls: list[str]) -> tuple[str | None, ...]:
    """``--db`` values: ``sqlite`` is a fresh SQLite file (None); one URL per backend, since
    the matrix's columns are backend x workers."""
    databases = tuple(None if url == "sqlite" else url for url in urls)
    try:
        backends = [backend_of(url) for url in databases]
    except FilterError as exc:
        raise typer.BadParameter(str(exc), param_hint="--db") from None
    repeated = sorted({b for b in backends if backends.count(b) > 1})
    if repeated:
        raise typer.BadParameter(
            f"one database per backend: {', '.join(repeated)} given more than once",
            param_hint="--db",
        )
    return databases


def _technique(name: str) -> Technique:
    return next(t for t in TECHNIQUES if t == name)


def _write(
    result: MatrixResult, out: Path | None, markdown: Path | None, html: Path | None
) -> None:
    if out is not None:
        out.write_text(result.to_json(), encoding="utf-8")
    if markdown is not None:
        markdown.write_text(render_markdown(result), encoding="utf-8")
    if html is not None:
        from toctou.report import render_matrix_html

        html.write_text(render_matrix_html(result), encoding="utf-8")
