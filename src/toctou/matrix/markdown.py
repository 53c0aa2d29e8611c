"""The matrix as Markdown: strategies as rows, backend x workers as columns."""

from __future__ import annotations

import shlex

from toctou.matrix.result import MatrixCell, MatrixResult

__all__ = ["cell_text", "render_markdown"]

_BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}


def cell_text(cell: MatrixCell) -> str:
    """SAFE, RACY with its worst damage and rounds affected, or ERRORS; SURPRISE marked."""
    if cell.verdict == "errors":
        text = "ERRORS"
    elif cell.verdict == "safe":
        text = "SAFE"
    else:
        text = f"RACY {cell.worst_damage}, {cell.rounds_affected}/{len(cell.rounds)}"
    return f"**{text} SURPRISE**" if cell.surprise else text


def _column(backend: str, workers: int) -> str:
    return f"{_BACKEND_NAMES.get(backend, backend)} x{workers}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: MatrixResult) -> str:
    """One table per scenario, then the surprises and the cells that could not be judged."""
    columns = list(dict.fromkeys((c.backend, c.workers) for c in result.cells))
    lines = [
        "# Which fix holds where",
        "",
        result.summary,
        "",
        f"Each cell: {result.rounds} round(s) of the scenario's race recipe with "
        + (
            "its race window"
            if result.window_ms is None
            else f"a {result.window_ms:g} ms race window"
        )
        + f" (technique {result.technique}), the scenario "
        "reset before each round and judged by the lab's own audit after it. SAFE: the audit "
        "held after every round. RACY d, r/n: worst damage d (in the scenario's unit, named "
        "above its table), the audit broken after r of n rounds. ERRORS: the rounds could not "
        "be judged. SURPRISE: not what the catalogue claims.",
        "",
    ]
    scenarios = list(dict.fromkeys(c.scenario for c in result.cells))
    for scenario in scenarios:
        cells = [c for c in result.cells if c.scenario == scenario]
        lines += [
            f"## {scenario} (damage: {cells[0].damage_unit})",
            "",
            "| strategy | " + " | ".join(_column(b, w) for b, w in columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for strategy in dict.fromkeys(c.strategy for c in cells):
            by_column = {(c.backend, c.workers): c for c in cells if c.strategy == strategy}
            row = [cell_text(by_column[k]) if k in by_column else "-" for k in columns]
            lines.append(f"| {strategy} | " + " | ".join(row) + " |")
        lines.append("")
    notable = [c for c in result.cells if c.surprise or c.verdict == "errors"]
    if notable:
        lines += ["## Cells to look at", ""]
        for c in notable:
            claim = "holds" if c.claimed_safe else "fails"
            what = (
                f"could not be judged: {_escape(c.error or 'see the JSON')}"
                if c.verdict == "errors"
                else f"{cell_text(c)}, but the catalogue says it {claim} here ({c.claimed})"
            )
            lines.append(f"- {c.scenario} / {c.strategy}, {_column(c.backend, c.workers)}: {what}")
        lines.append("")
    if result.skipped:
        lines += ["## Not run", ""] + [f"- {_escape(line)}" for line in result.skipped] + [""]
    with_load = [c for c in result.cells if c.throughput]
    if with_load:
        lines += [
            "## Throughput under contention",
            "",
            "| scenario | strategy | backend | successes/s | answers/s | p50 ms | p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in with_load:
            t = c.throughput
            assert t is not None
            lines.append(
                f"| {c.scenario} | {c.strategy} | {_column(c.backend, c.workers)} | "
                f"{t.successes_per_second:g} | {t.per_second:g} | {t.p50_ms:g} | {t.p99_ms:g} |"
            )
        lines.append("")
    lines += ["## Versions", ""]
    lines += [f"- {name}: {version}" for name, version in result.versions.items()]
    for lab in result.labs:
        if lab.error:
            lines.append(f"- lab {_column(lab.backend, lab.workers)} did not start: {lab.error}")
    if result.command:
        lines += ["", "Regenerate with:", "", "```", shlex.join(result.command), "```"]
    return "\n".join(lines) + "\n"
