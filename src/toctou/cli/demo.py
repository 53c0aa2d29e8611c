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


def _spread(result: DemoResult) -> str:
    return "-" if result.arrival_spread_ms is None else f"{result.arrival_spread_ms:.2f} ms"


def render_result(result: DemoResult) -> Panel:
    lines = [
        f"Starting stock: {result.starting_stock}",
        f"Fired {result.buyers} purchases at once ({result.technique} over {result.protocol}); "
        f"they reached the server within {_spread(result)}",
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
    title = f"strategy: {result.strategy}, race window {result.window_ms:g} ms"
    return Panel("\n".join(lines), title=title, border_style=style)


def render_demo(results: list[DemoResult]) -> Table:
    table = Table(title="Summary")
    for column in ("window", "strategy", "successes", "final stock", "sold", "arrival spread"):
        table.add_column(column)
    table.add_column("audit")
    for r in results:
        verdict = "[green]holds[/]" if r.audit_holds else f"[red]violated ({r.race_type})[/]"
        table.add_row(
            f"{r.window_ms:g} ms",
            r.strategy,
            str(r.successes),
            str(r.final_stock),
            str(r.units_sold),
            _spread(r),
            verdict,
        )
    return table


def demo(
    buyers: Annotated[int, typer.Option(min=2, max=200, help="Concurrent purchases.")] = 10,
) -> None:
    """Start the lab on a free loopback port, race it, show what happened, stop it."""
    try:
        from toctou.lab.process import LabStartError, serve_lab
    except ImportError:
        fail("the demo needs the lab: pip install 'toctou[lab]'")
    started = time.perf_counter()
    console.print("Starting the lab (SQLite, HTTP/1.1 and HTTP/2) ...")
    try:
        with serve_lab(http2=True) as lab:
            console.print(f"Lab running at {lab.base_url}\n")
            results = asyncio.run(run_demo(lab.base_url, buyers=buyers))
    except LabStartError as exc:
        fail(f"the lab did not start: {exc}")
    for result in results:
        console.print(render_result(result))
    console.print(render_demo(results))
    console.print(f"Done in {time.perf_counter() - started:.1f} s.")
