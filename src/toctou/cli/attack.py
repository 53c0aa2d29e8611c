"""``toctou attack URL``: fire a synchronised burst, judge it, exit 0 / 1 / 2 / 3.

Exit codes: 0 no race observed, 1 race found, 2 usage error, 3 target unreachable or inconclusive.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit, urlunsplit

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
from toctou.engine.target import Origin
from toctou.errors import PlanError, TargetError
from toctou.report import write_junit

__all__ = ["attack"]

EXIT_USAGE = 2
DEFAULT_TIMEOUTS = Timeouts()
EXIT_INCONCLUSIVE = 3


def _headers(raw: list[str]) -> list[tuple[str, str]]:
    headers = []
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise typer.BadParameter(f"expected 'Name: value', got {item!r}", param_hint="-H")
        headers.append((name.strip(), value.strip()))
    return headers


def _read_data(value: str, *, binary: bool, flag: str) -> bytes:
    """``@file`` or the text itself; as curl, ``-d @file`` drops the file's CR and LF bytes."""
    if not value.startswith("@"):
        return value.encode()
    name = value[1:]
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {name}: {exc.strerror or exc}", param_hint=flag
        ) from None
    return raw if binary else raw.replace(b"\r", b"").replace(b"\n", b"")


def _body(
    data: list[str],
    data_binary: str | None,
    json_body: str | None,
    headers: list[tuple[str, str]],
) -> bytes | None:
    """The body the options give, as curl builds it, or None when none was given.

    ``-d`` (repeatable, joined with ``&``) and ``--data-binary`` are form data unless a
    Content-Type says otherwise; ``--json`` is JSON (and asks for JSON back).
    """
    if sum(x is not None for x in (data or None, data_binary, json_body)) > 1:
        raise typer.BadParameter("give one of -d, --data-binary and --json", param_hint="--json")
    names = {k.lower() for k, _ in headers}
    if json_body is not None:
        body = _read_data(json_body, binary=True, flag="--json")
        try:
            json.loads(body)
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--json") from None
        if "content-type" not in names:
            headers.append(("Content-Type", "application/json"))
        if "accept" not in names:
            headers.append(("Accept", "application/json"))
        return body
    if data:
        body = b"&".join(_read_data(d, binary=False, flag="-d") for d in data)
    elif data_binary is not None:
        body = _read_data(data_binary, binary=True, flag="--data-binary")
    else:
        return None
    if "content-type" not in names:
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    return body


def _without_credentials(url: str, headers: list[tuple[str, str]]) -> str:
    """As curl: ``user:password@`` in the URL becomes Basic auth (unless -H gave one)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise typer.BadParameter(f"not a valid URL: {exc}", param_hint="URL") from None
    if parts.username is None:
        return url
    if not any(k.lower() == "authorization" for k, _ in headers):
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode()))
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _request(
    url: str | None,
    method: str | None,
    header: list[str],
    body_options: tuple[list[str], str | None, str | None],
    request_file: Path | None,
) -> RaceRequest:
    """The race request from the URL and curl-like options, or from a raw request file.

    With ``--request-file``: ``-X`` replaces its method, ``-H`` its headers of the same name,
    and ``-d``/``--data-binary``/``--json`` its body; the URL, if given, the scheme, host and
    port it is sent to.
    """
    headers = _headers(header)
    body = _body(*body_options, headers)
    if url is not None:
        url = _without_credentials(url, headers)
    if request_file is not None:
        try:
            raw = request_file.read_bytes()
        except OSError as exc:
            raise typer.BadParameter(
                str(exc.strerror or exc), param_hint="--request-file"
            ) from None
        parsed = parse_raw_request(raw, base_url=url)
        given = {k.lower() for k, _ in headers}
        kept = [(k, v) for k, v in parsed.headers if k.lower() not in given]
        return replace(
            parsed,
            method=(method or parsed.method).upper(),
            headers=(*kept, *headers),
            body=parsed.body if body is None else body,
        )
    if url is None:
        raise typer.BadParameter("give a URL, --request-file or --config", param_hint="URL")
    verb = (method or ("POST" if body is not None else "GET")).upper()
    return RaceRequest(url=url, method=verb, headers=tuple(headers), body=body or b"")


_SESSION_HEADERS = ("authorization", "cookie")


def _in_session(spec: RaceRequest, race: RaceRequest) -> RaceRequest:
    """A reset or probe on the race's origin carries its credentials (Authorization, Cookie)."""
    if Origin.of(spec.url) != Origin.of(race.url):
        return spec
    have = {k.lower() for k, _ in spec.headers}
    extra = tuple(
        (k, v) for k, v in race.headers if k.lower() in _SESSION_HEADERS and k.lower() not in have
    )
    return replace(spec, headers=spec.headers + extra) if extra else spec


def _success(
    statuses: list[int], regex: str | None, json_path: str | None, json_value: str | None
) -> SuccessRule | None:
    if not statuses and regex is None and json_path is None and json_value is None:
        return None
    if json_value is not None and json_path is None:
        raise typer.BadParameter(
            "--success-json-value needs --success-json-path", param_hint="--success-json-value"
        )
    return SuccessRule(
        statuses=tuple(statuses), body_regex=regex, json_path=json_path, json_value=json_value
    )


def _oracle_changes(
    race: RaceRequest | None,
    expect_max_successes: int | None,
    success: SuccessRule | None,
    probe: str | None,
    probe_path: str | None,
    probe_unit: float | None,
    baseline: bool,
    reset: str | None,
) -> dict[str, Any]:
    """The oracle fields the flags set (only those given), ready for ``dataclasses.replace``."""
    if (probe is None) != (probe_path is None):
        raise typer.BadParameter("--probe and --probe-path go together", param_hint="--probe-path")

    def spec(text: str) -> RaceRequest:
        request = parse_request_spec(text)
        return _in_session(request, race) if race is not None else request

    changes: dict[str, Any] = {}
    if expect_max_successes is not None:
        changes["expect_max_successes"] = expect_max_successes
    if success is not None:
        changes["success"] = success
    if probe is not None and probe_path is not None:
        unit = -1.0 if probe_unit is None else probe_unit
        changes["probe"] = Probe(spec(probe), probe_path, unit)
    elif probe_unit is not None:
        raise typer.BadParameter("--probe-unit needs --probe", param_hint="--probe-unit")
    if reset is not None:
        changes["reset"] = spec(reset)
    if baseline:
        changes["baseline"] = True
    return changes


def _check_report_path(path: Path | None, flag: str) -> None:
    """Refuse a report path that cannot be written before any request is sent."""
    if path is None:
        return
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory", param_hint=flag)
    if not path.parent.is_dir():
        raise typer.BadParameter(f"no such directory: {path.parent}", param_hint=flag)
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise typer.BadParameter(f"cannot write {path}", param_hint=flag)


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
    url: Annotated[str | None, typer.Argument(help="Target URL (not with --config).")] = None,
    method: Annotated[str | None, typer.Option("-X", "--request", help="HTTP method.")] = None,
    header: Annotated[
        list[str], typer.Option("-H", "--header", help="'Name: value', repeatable.")
    ] = [],  # noqa: B006
    data: Annotated[
        list[str],
        typer.Option(
            "-d", "--data", help="Form body as curl -d: repeatable (joined by &), or @file."
        ),
    ] = [],  # noqa: B006
    data_binary: Annotated[
        str | None, typer.Option("--data-binary", help="Body sent byte for byte, or @file.")
    ] = None,
    json_body: Annotated[
        str | None, typer.Option("--json", help="JSON body, or @file (sets Content-Type).")
    ] = None,
    request_file: Annotated[
        Path | None, typer.Option(help="A raw HTTP request, as a proxy or browser copies it.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="race.toml for multi-request races.")] = None,
    count: Annotated[
        int | None,
        typer.Option("-n", "--count", min=1, max=10_000, help="Requests per round [default: 20]."),
    ] = None,
    technique: Annotated[str | None, typer.Option(help=f"One of: {', '.join(TECHNIQUES)}.")] = None,
    rounds: Annotated[int | None, typer.Option(min=1, max=10_000, help="Rounds to run.")] = None,
    gate_wait_ms: Annotated[
        float | None, typer.Option(min=0, max=10_000, help="Pause before release [default: 100].")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, max=600, help="Seconds per response [default: 15].")
    ] = None,
    connect_timeout: Annotated[
        float | None, typer.Option(min=0.1, max=120, help="Seconds per connect [default: 5].")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("-k", "--insecure", help="Accept any TLS certificate.")
    ] = False,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            min=0, max=64 * 2**20, help="Response bytes kept per request [default: 65536]."
        ),
    ] = None,
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
    probe_unit: Annotated[
        float | None, typer.Option(help="Expected change per success [default: -1].")
    ] = None,
    baseline: Annotated[
        bool, typer.Option(help="Send the requests one by one first, after --reset.")
    ] = False,
    reset: Annotated[
        str | None, typer.Option(help="'METHOD URL [BODY]' sent before each round.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the full result as JSON.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML.")] = None,
    no_redact: Annotated[
        bool, typer.Option("--no-redact", help="Keep Authorization and cookies in reports.")
    ] = False,
    max_requests: Annotated[
        int | None,
        typer.Option(min=1, help=f"Request budget for the whole run [default: {DEFAULT_BUDGET}]."),
    ] = None,
) -> None:
    """Race an HTTP endpoint with synchronised requests and judge the result from invariants.

    -H headers named Authorization or Cookie also go with --reset and --probe when those are
    on the race's host. With --config the file describes the requests; the other options
    override what it says.
    """
    try:
        _check_report_path(out, "--out")
        _check_report_path(junit, "--junit")
        if technique is not None and technique not in TECHNIQUES:
            raise typer.BadParameter(
                f"choose from {', '.join(TECHNIQUES)}", param_hint="--technique"
            )
        settings: dict[str, Any] = {
            key: value
            for key, value in (
                ("technique", technique),
                ("rounds", rounds),
                ("budget", max_requests),
                ("gate_wait_ms", gate_wait_ms),
                ("max_body_bytes", max_body_bytes),
            )
            if value is not None
        }
        if insecure:
            settings["insecure"] = True
        success = _success(success_status, success_regex, success_json_path, success_json_value)
        if config is not None:
            given = [
                flag
                for flag, value in (
                    ("URL", url),
                    ("-X", method),
                    ("-H", header),
                    ("-d", data),
                    ("--data-binary", data_binary),
                    ("--json", json_body),
                    ("--request-file", request_file),
                    ("-n", count),
                )
                if value
            ]
            if given:
                raise typer.BadParameter(
                    f"the file gives the requests: drop {', '.join(given)} or edit the file",
                    param_hint="--config",
                )
            timeouts = {
                k: v for k, v in (("timeout", timeout), ("connect_timeout", connect_timeout)) if v
            }
            plan = load_plan(config, {**settings, **timeouts})
            changes = _oracle_changes(
                None, expect_max_successes, success, probe, probe_path, probe_unit, baseline,
                reset,
            )  # fmt: skip
            if changes:
                plan = replace(plan, oracle=replace(plan.oracle, **changes))
        else:
            request = _request(url, method, header, (data, data_binary, json_body), request_file)
            changes = _oracle_changes(
                request, expect_max_successes, success, probe, probe_path, probe_unit, baseline,
                reset,
            )  # fmt: skip
            plan = RacePlan.repeat(
                request,
                20 if count is None else count,
                timeouts=Timeouts(
                    connect=connect_timeout or DEFAULT_TIMEOUTS.connect,
                    response=timeout or DEFAULT_TIMEOUTS.response,
                ),
                oracle=Oracle(**changes),
                **settings,
            )
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
    try:
        if out is not None:
            out.write_text(report.to_json(), encoding="utf-8")
        if junit is not None:
            write_junit(report, junit)
    except OSError as exc:
        err_console.print(f"[bold red]report:[/] cannot write it: {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(result.exit_code)
