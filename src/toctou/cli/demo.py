"""``toctou demo``: the seed's oversell, reproduced and fixed, in one command."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from toctou.cli.console import console, fail
from toctou.demo import DemoResult, run_demo

__all__ = ["demo", "render_demo"]

SEED_WINDOW_MS = 100.0


def render_result(result: DemoResult, window_ms: float) -> Panel:
    lines = [
        f"Starting stock: {result.starting_stock}",
        f"Fired {result.buyers} concurrent purchases (race window {window_ms:g} ms)",
        f"Successful buys: [bold]{result.successes}[/] (expected: at most {result.starting_stock})",
        f"Rejected: {result.rejected}   Errors: {result.errors}",
        f"Final stock: {result.final_stock}   Orders recorded: {result.units_sold} units",
        "",
    ]
    if result.audit_holds:
        lines.append("[bold green]SECURE.[/] The audit holds: stock and orders agree.")
        style = "green"
    else:
        lines.append(
            f"[bold red]RACE CONDITION DETECTED![/] Sold {result.units_sold} "
            f"with {result.starting_stock} in stock."
        )
        lines.append(f"Type: {result.race_type}")
        if result.race_type == "Lost Update":
            lines.append(
                f"  (buyers read '{result.starting_stock}' and wrote back the same result:"
                f" {result.units_sold} orders, stock fell by"
                f" {result.starting_stock - result.final_stock})"
            )
        lines.extend(f"  audit: {v}" for v in result.violations)
        style = "red"
    return Panel("\n".join(lines), title=f"strategy: {result.strategy}", border_style=style)


def render_demo(results: list[DemoResult], window_ms: float) -> Table:
    table = Table(title="Summary")
    for column in ("strategy", "successes", "final stock", "sold", "audit"):
        table.add_column(column)
    for r in results:
        verdict = "[green]holds[/]" if r.audit_holds else f"[red]violated ({r.race_type})[/]"
        table.add_row(r.strategy, str(r.successes), str(r.final_stock), str(r.units_sold), verdict)
    return table


def demo(
    buyers: Annotated[int, typer.Option(min=2, max=200, help="Concurrent purchases.")] = 10,
    race_window_ms: Annotated[
        float, typer.Option(min=0, max=1000, help="Delay between check and commit.")
    ] = SEED_WINDOW_MS,
) -> None:
    """Start the lab on a free loopback port, race it, show what happened, stop it."""
    try:
        from toctou.lab.process import LabStartError, serve_lab
    except ImportError:
        fail("the demo needs the lab: pip install 'toctou[lab]'")
    started = time.perf_counter()
    console.print(f"Starting the lab (SQLite, race window {race_window_ms:g} ms) ...")
    try:
        with serve_lab(race_window_ms=race_window_ms) as lab:
            console.print(f"Lab running at {lab.base_url}\n")
            results = asyncio.run(run_demo(lab.base_url, buyers=buyers))
    except LabStartError as exc:
        fail(f"the lab did not start: {exc}")
    for result in results:
        console.print(render_result(result, race_window_ms))
    console.print(render_demo(results, race_window_ms))
    console.print(f"Done in {time.perf_counter() - started:.1f} s.")
