"""``toctou report RESULT.json -o report.html``: render a saved attack or matrix as HTML."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from toctou.cli.console import console, fail
from toctou.engine import RaceResult
from toctou.matrix.result import MatrixResult
from toctou.report import write_html

__all__ = ["report"]

EXIT_USAGE = 2
_ERRORS_SHOWN = 3


def _invalid(path: Path, exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
        for e in exc.errors()[:_ERRORS_SHOWN]
    ]
    more = exc.error_count() - len(problems)
    tail = f" (and {more} more)" if more > 0 else ""
    return f"{path} is not a saved toctou result: " + "; ".join(problems) + tail


def _load(path: Path) -> RaceResult | MatrixResult:
    """The saved result at ``path``; a clear message and exit 2 when it cannot be read."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", code=EXIT_USAGE)
    try:
        data = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError included
        fail(f"{path} is not JSON: {exc}", code=EXIT_USAGE)
    if not isinstance(data, dict):
        fail(f"{path} is not a saved toctou result: not a JSON object", code=EXIT_USAGE)
    try:
        if MatrixResult.is_matrix(data):
            return MatrixResult.model_validate(data)
        return RaceResult.from_dict(data)
    except ValidationError as exc:
        fail(_invalid(path, exc), code=EXIT_USAGE)


def _check_output(path: Path, source: Path) -> None:
    if path.is_dir():
        fail(f"{path} is a directory", code=EXIT_USAGE)
    if not path.parent.is_dir():
        fail(f"no such directory: {path.parent}", code=EXIT_USAGE)
    if path.exists() and path.resolve() == source.resolve():
        fail(f"{path} is the result itself; write the report elsewhere", code=EXIT_USAGE)
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f"cannot write {path}", code=EXIT_USAGE)


def report(
    result: Annotated[
        Path, typer.Argument(help="A saved result: toctou attack --out, or toctou matrix's.")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The HTML file to write (one file, offline).")
    ],
) -> None:
    """Render a saved attack or matrix result as a self-contained HTML report."""
    _check_output(output, result)
    saved = _load(result)
    try:
        write_html(saved, output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", code=EXIT_USAGE)
    kind = "matrix" if isinstance(saved, MatrixResult) else "attack"
    console.print(f"wrote {output} ({kind} report)", highlight=False, markup=False, soft_wrap=True)
