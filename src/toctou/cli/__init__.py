"""The ``toctou`` command line: one module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from toctou import __version__
from toctou.cli import attack, demo, matrix, report, serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="toctou",
    help="Find, prove and fix race conditions in web APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # help paragraphs reflow to the terminal's width
)


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"toctou {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Find, prove and fix race conditions in web APIs."""


app.command(name="serve")(serve.serve)
app.command(name="attack")(attack.attack)
app.command(name="demo")(demo.demo)
app.command(name="report")(report.report)
app.command(name="matrix")(matrix.matrix)


def main() -> None:
    app()
