"""``toctou attack URL``: fire a synchronised burst, judge it, exit 0 / 1 / 2 / 3.

Exit codes: 0 no race observed, 1 race found, 2 usage error, 3 target unreachable or inconclusive.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from toctou.cli.console import console, err_console, render_race
from toctou.engine import (
    DEFAULT_BUDGET,
    Oracle,
    Probe,
    RacePlan,
    RaceRequest,
    SuccessRule,
    Timeouts,
    run_race,
)
from toctou.engine.config import load_plan
from toctou.engine.plan import TECHNIQUES
from toctou.engine.requestfile import parse_raw_request, parse_request_spec
from toctou.engine.result import RaceResult, RoundResult
from toctou.errors import PlanError, TargetError
from toctou.report import write_junit

__all__ = ["attack"]

EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3


def _headers(raw: list[str]) -> list[tuple[str, str]]:
    headers = []
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise typer.BadParameter(f"expected 'Name: value', got {item!r}", param_hint="-H")
        headers.append((name.strip(), value.strip()))
    return headers


def _body(data: str | None, json_body: str | None, headers: list[tuple[str, str]]) -> bytes:
    """As curl: ``-d`` is form data unless a Content-Type says otherwise; ``--json`` is JSON."""
    if data is not None and json_body is not None:
        raise typer.BadParameter("give -d or --json, not both", param_hint="--json")
    names = {k.lower() for k, _ in headers}
    if json_body is not None:
        try:
            json.loads(json_body)
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--json") from None
        if "content-type" not in names:
            headers.append(("Content-Type", "application/json"))
        if "accept" not in names:
            headers.append(("Accept", "application/json"))
        return json_body.encode()
    if data is not None:
        if "content-type" not in names:
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        return Path(data[1:]).read_bytes() if data.startswith("@") else data.encode()
    return b""


def _request(
    url: str | None,
    method: str | None,
    header: list[str],
    data: str | None,
    json_body: str | None,
    request_file: Path | None,
) -> RaceRequest:
    if request_file is not None:
        try:
            raw = request_file.read_bytes()
        except OSError as exc:
            raise typer.BadParameter(
                str(exc.strerror or exc), param_hint="--request-file"
            ) from None
        request = parse_raw_request(raw, base_url=url)
        extra = _headers(header)
        return replace(
            request, headers=request.headers + tuple(extra), method=method or request.method
        )
    if url is None:
        raise typer.BadParameter("give a URL, --request-file or --config", param_hint="URL")
    headers = _headers(header)
    body = _body(data, json_body, headers)
    verb = (method or ("POST" if body or json_body is not None else "GET")).upper()
    return RaceRequest(url=url, method=verb, headers=tuple(headers), body=body)


def _oracle(
    expect_max_successes: int | None,
    success_status: list[int],
    success_regex: str | None,
    success_json_path: str | None,
    success_json_value: str | None,
    probe: str | None,
    probe_path: str | None,
    probe_unit: float,
    baseline: bool,
    reset: str | None,
) -> Oracle:
    if (probe is None) != (probe_path is None):
        raise typer.BadParameter("--probe and --probe-path go together", param_hint="--probe-path")
    return Oracle(
        success=SuccessRule(
            statuses=tuple(success_status),
            body_regex=success_regex,
            json_path=success_json_path,
            json_value=success_json_value,
        ),
        expect_max_successes=expect_max_successes,
        probe=Probe(parse_request_spec(probe), probe_path, probe_unit)
        if probe and probe_path
        else None,
        reset=parse_request_spec(reset) if reset else None,
        baseline=baseline,
    )


def _run_with_progress(plan: RacePlan) -> RaceResult:
    with Progress(
        TextColumn("[bold]racing[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=plan.rounds)

        def advance(r: RoundResult) -> None:
            note = "race!" if r.violations else f"{r.successes} successes"
            progress.update(task, advance=1, description=note)

        return run_race(plan, on_round=advance)


def attack(
    url: Annotated[str | None, typer.Argument(help="Target URL (optional with --config).")] = None,
    method: Annotated[str | None, typer.Option("-X", "--request", help="HTTP method.")] = None,
    header: Annotated[
        list[str], typer.Option("-H", "--header", help="'Name: value', repeatable.")
    ] = [],  # noqa: B006
    data: Annotated[
        str | None, typer.Option("-d", "--data", help="Body, or @file, sent as curl -d.")
    ] = None,
    json_body: Annotated[
        str | None, typer.Option("--json", help="JSON body (sets Content-Type).")
    ] = None,
    request_file: Annotated[
        Path | None, typer.Option(help="A raw HTTP request, as a proxy shows it.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="race.toml for multi-request races.")] = None,
    count: Annotated[
        int, typer.Option("-n", "--count", min=1, max=10_000, help="Requests per round.")
    ] = 20,
    technique: Annotated[str | None, typer.Option(help=f"One of: {', '.join(TECHNIQUES)}.")] = None,
    rounds: Annotated[int | None, typer.Option(min=1, max=10_000, help="Rounds to run.")] = None,
    gate_wait_ms: Annotated[
        float, typer.Option(min=0, max=10_000, help="Pause before release.")
    ] = 100.0,
    timeout: Annotated[float, typer.Option(min=0.1, max=600, help="Seconds per response.")] = 15.0,
    connect_timeout: Annotated[
        float, typer.Option(min=0.1, max=120, help="Seconds per connect.")
    ] = 5.0,
    insecure: Annotated[
        bool, typer.Option("-k", "--insecure", help="Accept any TLS certificate.")
    ] = False,
    expect_max_successes: Annotated[
        int | None, typer.Option(min=0, help="More successes is a race.")
    ] = None,
    success_status: Annotated[
        list[int], typer.Option(help="Statuses that mean success (default 2xx).")
    ] = [],  # noqa: B006
    success_regex: Annotated[
        str | None, typer.Option(help="Body regex that means success.")
    ] = None,
    success_json_path: Annotated[
        str | None, typer.Option(help="JSON path that must exist.")
    ] = None,
    success_json_value: Annotated[str | None, typer.Option(help="...and equal this.")] = None,
    probe: Annotated[
        str | None, typer.Option(help="State to read before and after: URL or 'METHOD URL'.")
    ] = None,
    probe_path: Annotated[
        str | None, typer.Option(help="JSON path of the probed number, e.g. $.stock.")
    ] = None,
    probe_unit: Annotated[float, typer.Option(help="Expected change per success.")] = -1.0,
    baseline: Annotated[
        bool, typer.Option(help="Send the requests one by one first, after --reset.")
    ] = False,
    reset: Annotated[
        str | None, typer.Option(help="'METHOD URL [BODY]' sent before each round.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the full result as JSON.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML.")] = None,
    no_redact: Annotated[
        bool, typer.Option(help="Keep Authorization and cookies in reports.")
    ] = False,
    max_requests: Annotated[
        int | None,
        typer.Option(min=1, help=f"Request budget for the whole run [default: {DEFAULT_BUDGET}]."),
    ] = None,
) -> None:
    """Race an HTTP endpoint with synchronised requests and judge the result from invariants."""
    try:
        if technique is not None and technique not in TECHNIQUES:
            raise typer.BadParameter(
                f"choose from {', '.join(TECHNIQUES)}", param_hint="--technique"
            )
        options: dict[str, Any] = {}
        if technique is not None:
            options["technique"] = technique
        if rounds is not None:
            options["rounds"] = rounds
        if max_requests is not None:
            options["budget"] = max_requests
        if config is not None:
            plan = replace(load_plan(config), **options)
        else:
            request = _request(url, method, header, data, json_body, request_file)
            plan = RacePlan.repeat(
                request,
                count,
                gate_wait_ms=gate_wait_ms,
                timeouts=Timeouts(connect=connect_timeout, response=timeout),
                insecure=insecure,
                oracle=_oracle(
                    expect_max_successes, success_status, success_regex, success_json_path,
                    success_json_value, probe, probe_path, probe_unit, baseline, reset,
                ),
                **options,
            )  # fmt: skip
    except PlanError as exc:
        err_console.print(f"[bold red]usage:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        result = _run_with_progress(plan)
    except TargetError as exc:
        err_console.print(f"[bold red]target:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_INCONCLUSIVE) from None
    console.print(render_race(result))
    report = result if no_redact else result.redacted()
    if out is not None:
        out.write_text(report.to_json(), encoding="utf-8")
    if junit is not None:
        write_junit(report, junit)
    raise typer.Exit(result.exit_code)
