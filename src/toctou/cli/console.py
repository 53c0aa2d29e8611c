"""The only module that imports Rich: consoles and the renderers of CLI output."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from toctou.engine.result import RaceResult, RoundResult, Spread

__all__ = ["console", "err_console", "fail", "render_race"]

console = Console()
err_console = Console(stderr=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``message`` to stderr and leave with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f} ms"


def _spread(spread: Spread | None) -> str:
    if spread is None:
        return "-"
    return f"{_ms(spread.range_ns)} (sd {spread.stdev_ns / 1e6:.3f})"


def _state(r: RoundResult, expect_max_successes: int | None) -> str:
    """The invariants of a round, green only where they were judged and held."""
    if r.violations:
        return "[red]broken[/]"
    if not r.judged:
        return "[yellow]not judged[/]"
    if r.index < 0:
        return "sequential"  # the baseline is what the rounds are compared with
    if not r.successes and expect_max_successes != 0:
        return "[yellow]not judged: no success[/]"
    return "[green]hold[/]"


def _errors(r: RoundResult) -> str:
    """Failed requests, or what failed instead of them (the batch, the reset, the probe)."""
    for failed, what in (
        (r.batch_error, "batch"),
        (r.reset_error, "reset"),
        (r.probe_error, "probe"),
    ):
        if failed:
            return f"[yellow]{what} failed[/]"
    return str(r.errors)


def render_race(result: RaceResult) -> Group:
    """The summary of a race: one row per round, then the verdict with its evidence."""
    table = Table(title=f"{result.technique} over {result.protocol}", title_justify="left")
    for column in ("round", "successes", "errors", "probe", "release spread", "arrival spread"):
        table.add_column(column, justify="right" if column != "probe" else "left")
    table.add_column("invariants")
    rows = ([result.baseline] if result.baseline else []) + list(result.rounds)
    for r in rows:
        probe = (
            "-"
            if r.probe_before is None
            else f"{r.probe_before:g} -> "
            + (f"{r.probe_after:g}" if r.probe_after is not None else "?")
        )
        table.add_row(
            "baseline" if r.index < 0 else str(r.index + 1),
            str(r.successes),
            _errors(r),
            probe,
            _spread(r.release_spread),
            _spread(r.arrival_spread),
            _state(r, result.plan.oracle.expect_max_successes),
        )
    colour = {"race": "red", "no_race_observed": "green", "inconclusive": "yellow"}[
        result.verdict.outcome
    ]
    lines = [f"[bold {colour}]{result.verdict.summary}[/]", *result.verdict.evidence, *result.notes]
    panel = Panel("\n".join(lines), border_style=colour, title="verdict")
    return Group(table, panel) if rows else Group(panel)  # no round ran: nothing to tabulate
