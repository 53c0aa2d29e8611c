"""``toctou demo``: a race reproduced and fixed in one command (by default the seed's)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from toctou.catalogue import CatalogueError
from toctou.cli.console import console, fail
from toctou.demo import DEMO_SCENARIO, DemoResult, run_demo

__all__ = ["demo", "render_demo", "render_result"]


def _spread(result: DemoResult) -> str:
    return "-" if result.arrival_spread_ms is None else f"{result.arrival_spread_ms:.2f} ms"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_result(result: DemoResult) -> Panel:
    lines = []
    if result.probe_path:
        lines.append(f"Before: {result.probe_path} = {_value(result.probe_before)}")
    lines.append(
        f"Fired {result.requests} requests at once ({result.technique} over {result.protocol}); "
        f"they reached the server within {_spread(result)}"
    )
    expected = (
        f" (expected: at most {result.expect_max_successes})"
        if result.expect_max_successes is not None
        else ""
    )
    statuses = result.success_statuses
    counted = "" if all(200 <= s < 300 for s in statuses) else f" ({'/'.join(map(str, statuses))})"
    replays = (
        f", naming {result.effects} distinct effect(s): the others were replays"
        if result.successes and result.effects < result.successes
        else ""
    )
    lines.append(f"Successful{counted}: [bold]{result.successes}[/]{expected}{replays}")
    lines.append(f"Rejected: {result.rejected}   Errors: {result.errors}")
    if result.probe_path:
        lines.append(f"After: {result.probe_path} = {_value(result.probe_after)}")
    lines.append("")
    if result.audit_holds and result.claimed_to_fail:
        lines.append(
            "[bold yellow]NO RACE THIS TIME.[/] The audit holds, but this strategy is racy "
            f"(it holds: {result.claimed_safe}): run it again, or widen the race window."
        )
        style = "yellow"
    elif result.audit_holds and result.holds_everywhere:
        lines.append("[bold green]SECURE.[/] The audit holds.")
        lines.append(f"  holds: {result.claimed_safe}")
        style = "green"
    elif result.audit_holds:
        lines.append("[bold green]SECURE HERE[/] (SQLite, one worker): the audit holds.")
        lines.append(f"  [yellow]where it holds: {result.claimed_safe}[/]")
        style = "yellow"
    else:
        lines.append(
            f"[bold red]RACE CONDITION DETECTED![/] Damage: {result.damage} {result.damage_unit}."
        )
        if result.race_type:
            lines.append(f"Type: {result.race_type}")
        lines.extend(f"  audit: {v}" for v in result.violations)
        style = "red"
    title = f"{result.scenario} / {result.strategy}, race window {result.window_ms:g} ms"
    return Panel("\n".join(lines), title=title, border_style=style)


def render_demo(results: list[DemoResult]) -> Table:
    """One row per burst, within 80 columns: the probed state before it, successes of the
    requests sent, the damage the audit found and the race's type."""
    first = results[0] if results else None
    probed = first.probe_path.split()[-1].removeprefix("$.") if first and first.probe_path else ""
    table = Table(
        title=f"Summary: {first.title}" if first else "Summary",
        caption=f"damage: {first.damage_unit}" if first else None,
    )
    for column in ("window", "strategy", probed or "before", "won", "damage", "spread", "audit"):
        table.add_column(column)
    for r in results:
        if r.audit_holds and r.claimed_to_fail:
            verdict = "[yellow]held this time[/]"
        elif r.audit_holds:
            verdict = "[green]holds[/]" if r.holds_everywhere else "[yellow]holds here[/]"
        else:
            verdict = f"[red]{(r.race_type or 'broken').upper()}[/]"
        table.add_row(
            f"{r.window_ms:g} ms",
            r.strategy,
            _value(r.probe_before),
            f"{r.successes}/{r.requests}",
            str(r.damage),
            _spread(r),
            verdict,
        )
    return table


def admission_note(results: list[DemoResult]) -> str | None:
    """When a burst had more requests than the lab runs at once, say what that means."""
    for r in results:
        limit = r.admission_limit
        if limit and r.requests > limit:
            return (
                f"The lab runs {limit} database requests per worker at once "
                f"(TOCTOU_POOL_SIZE); the other {r.requests - limit} of each burst of "
                f"{r.requests} waited in arrival order, so at most {limit} raced."
            )
    return None


def demo(
    scenario: Annotated[
        str,
        typer.Option(help="The scenario to race (see GET /scenarios): inventory, wallet, ..."),
    ] = DEMO_SCENARIO,
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="A strategy to race (repeatable); default: vulnerable and best fixes."),
    ] = None,
    buyers: Annotated[
        int | None,
        typer.Option(
            min=2, max=200, help="Concurrent requests (recipes of one request); default: recipe's."
        ),
    ] = None,
) -> None:
    """Start the lab on a free loopback port, race a scenario, show what happened, stop it."""
    try:
        from toctou.lab.process import LabStartError, serve_lab
    except ImportError:
        fail("the demo needs the lab: pip install 'toctou[lab]'")
    started = time.perf_counter()
    console.print("Starting the lab (SQLite, HTTP/1.1 and HTTP/2) ...")
    try:
        with serve_lab(http2=True) as lab:
            console.print(f"Lab running at {lab.base_url}\n")
            results = asyncio.run(
                run_demo(
                    lab.base_url, scenario=scenario, requests=buyers, strategies=strategy or ()
                )
            )
    except LabStartError as exc:
        fail(f"the lab did not start: {exc}")
    except CatalogueError as exc:
        fail(str(exc), code=2)
    for result in results:
        console.print(render_result(result))
    console.print(render_demo(results))
    if note := admission_note(results):
        console.print(note)
    console.print(f"Done in {time.perf_counter() - started:.1f} s.")
