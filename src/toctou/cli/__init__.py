"""The ``toctou`` command line: one module per command."""

from __future__ import annotations

import typer

from toctou.cli import attack, demo, matrix, report, serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="toctou",
    help="Find, prove and fix race conditions in web APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(name="serve")(serve.serve)
app.command(name="attack")(attack.attack)
app.command(name="demo")(demo.demo)
app.command(name="report")(report.report)
app.command(name="matrix")(matrix.matrix)


def main() -> None:
    app()
