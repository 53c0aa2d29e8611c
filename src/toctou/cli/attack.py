"""``toctou attack URL``: fire a synchronised burst, judge it, exit 0 / 1 / 2 / 3 / 130.

Exit codes: 0 no race observed, 1 race found, 2 usage error, 3 target unreachable or inconclusive,
130 stopped with Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

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
    arun_race,
)
from toctou.engine.config import load_plan
from toctou.engine.plan import TECHNIQUES
from toctou.engine.requestfile import (
    credentials_to_header,
    parse_raw_request,
    parse_request_spec,
)
from toctou.engine.result import RaceResult, RoundResult
from toctou.engine.target import Origin
from toctou.errors import PlanError, TargetError
from toctou.report import write_html, write_junit

__all__ = ["attack"]

EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C
DEFAULT_TIMEOUTS = Timeouts()


def _headers(raw: list[str]) -> tuple[list[tuple[str, str]], set[str]]:
    """``-H`` values as curl reads them: ``Name: value``; ``Name;`` sends an empty value;
    ``Name:`` with nothing after it removes that header (from a request file). Returns the
    headers to send and the names to remove."""
    headers, removed = [], set()
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep and item.endswith(";"):
            name, sep, value = item[:-1], ":", ""
            empty_ok = True
        else:
            empty_ok = False
        if not sep or not name.strip() or " " in name.strip():
            raise typer.BadParameter(f"expected 'Name: value', got {item!r}", param_hint="-H")
        if value.strip() or empty_ok:
            headers.append((name.strip(), value.strip()))
        else:
            removed.add(name.strip().lower())
    return headers, removed


def _read_data(value: str, *, binary: bool, flag: str) -> bytes:
    """``@file`` (``@-``: standard input) or the text itself; as curl, ``-d @file`` drops the
    file's CR and LF bytes and ``--data-binary @file`` keeps them."""
    if not value.startswith("@"):
        return os.fsencode(value)  # the argument's own bytes, UTF-8 or not, as curl sends them
    name = value[1:]
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {name}: {exc.strerror or exc}", param_hint=flag
        ) from None
    return raw if binary else raw.replace(b"\r", b"").replace(b"\n", b"")


_FORM = ("Content-Type", "application/x-www-form-urlencoded")
_JSON = (("Content-Type", "application/json"), ("Accept", "application/json"))


def _body(
    data: list[str], data_binary: list[str], json_body: list[str]
) -> tuple[bytes | None, tuple[tuple[str, str], ...]]:
    """The body the options give, as curl builds it, and the headers that go with it by default
    (a header the user or the request file gives wins). ``(None, ())`` when no body was given.

    ``-d`` and ``--data-binary`` (each repeatable, all joined with ``&``) are form data;
    ``--json`` is JSON and asks for JSON back.
    """
    if json_body and (data or data_binary):
        raise typer.BadParameter("give --json or -d/--data-binary, not both", param_hint="--json")
    if len(json_body) > 1:
        raise typer.BadParameter("give --json once", param_hint="--json")
    if json_body:
        body = _read_data(json_body[0], binary=True, flag="--json")
        try:
            json.loads(body)
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--json") from None
        return body, _JSON
    parts = [_read_data(d, binary=False, flag="-d") for d in data]
    parts += [_read_data(d, binary=True, flag="--data-binary") for d in data_binary]
    return (b"&".join(parts), (_FORM,)) if parts else (None, ())


def _with_defaults(
    headers: list[tuple[str, str]], defaults: tuple[tuple[str, str], ...], removed: set[str]
) -> list[tuple[str, str]]:
    names = {k.lower() for k, _ in headers} | removed
    return headers + [(k, v) for k, v in defaults if k.lower() not in names]


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _target_url(url: str) -> str:
    """As curl: a URL without a scheme is http://."""
    return url if _SCHEME.match(url) else f"http://{url}"


def _request(
    url: str | None,
    method: str | None,
    header: list[str],
    body_options: tuple[list[str], list[str], list[str]],
    request_file: Path | None,
) -> RaceRequest:
    """The race request from the URL and curl-like options, or from a raw request file.

    With ``--request-file``: ``-X`` replaces its method, ``-H`` its headers of the same name,
    and ``-d``/``--data-binary``/``--json`` its body (``--json`` its Content-Type too; form
    data keeps the file's); the URL, if given, says where it goes: scheme, host and port only.
    """
    given, removed = _headers(header)
    body, defaults = _body(*body_options)
    if url is not None:
        url, auth = credentials_to_header(_target_url(url), given)
        given = list(auth)
    if request_file is not None:
        parts = urlsplit(url or "")
        if parts.path not in ("", "/") or parts.query:
            raise typer.BadParameter(
                "with --request-file the URL gives only scheme://host:port; the path is the file's",
                param_hint="URL",
            )
        try:
            raw = request_file.read_bytes()
        except OSError as exc:
            raise typer.BadParameter(
                str(exc.strerror or exc), param_hint="--request-file"
            ) from None
        try:
            parsed = parse_raw_request(raw, base_url=url)
        except PlanError as exc:
            raise PlanError(f"{request_file}: {exc}") from None
        names = {k.lower() for k, _ in given} | removed
        if body_options[2]:  # --json: its Content-Type replaces the file's
            names |= {k.lower() for k, _ in defaults} - removed
        kept = [(k, v) for k, v in parsed.headers if k.lower() not in names]
        return replace(
            parsed,
            method=(method or parsed.method).upper(),
            headers=tuple(_with_defaults(kept + given, defaults, removed)),
            body=parsed.body if body is None else body,
        )
    if url is None:
        raise typer.BadParameter("give a URL, --request-file or --config", param_hint="URL")
    verb = (method or ("POST" if body is not None else "GET")).upper()
    headers = _with_defaults(given, defaults, removed)
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
    current: SuccessRule,
    statuses: list[int],
    regex: str | None,
    json_path: str | None,
    json_value: str | None,
) -> SuccessRule | None:
    """``current`` (race.toml's rule, or the default) with the parts the flags give replaced;
    None when no flag gives one."""
    if not statuses and regex is None and json_path is None and json_value is None:
        return None
    rule = SuccessRule(
        statuses=tuple(statuses) or current.statuses,
        body_regex=current.body_regex if regex is None else regex,
        json_path=current.json_path if json_path is None else json_path,
        json_value=current.json_value if json_value is None else json_value,
    )
    if rule.json_value is not None and rule.json_path is None:
        raise typer.BadParameter(
            "--success-json-value needs --success-json-path", param_hint="--success-json-value"
        )
    return rule


def _oracle_changes(
    race: RaceRequest,
    current: Probe | None,
    expect_max_successes: int | None,
    success: SuccessRule | None,
    probe: tuple[str | None, str | None, float | None],
    baseline: bool,
    reset: str | None,
) -> dict[str, Any]:
    """The oracle fields the flags set (only those given), ready for ``dataclasses.replace``.

    ``current``: the probe race.toml gives, which ``--probe``, ``--probe-path`` and
    ``--probe-unit`` each override on their own.
    """
    url, path, unit = probe

    def spec(text: str) -> RaceRequest:
        return _in_session(parse_request_spec(text), race)

    changes: dict[str, Any] = {}
    if expect_max_successes is not None:
        changes["expect_max_successes"] = expect_max_successes
    if success is not None:
        changes["success"] = success
    if current is None and (url is None) != (path is None):
        raise typer.BadParameter("--probe and --probe-path go together", param_hint="--probe-path")
    if current is None and url is None and unit is not None:
        raise typer.BadParameter("--probe-unit needs --probe", param_hint="--probe-unit")
    if url is not None or path is not None or unit is not None:
        base = current or Probe(race, "$", -1.0)  # replaced in full when there is no current
        changes["probe"] = Probe(
            spec(url) if url is not None else base.request,
            path if path is not None else base.json_path,
            unit if unit is not None else base.unit,
        )
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

        async def race() -> RaceResult:
            # Ctrl-C once: no further round starts, the rounds done are judged and the reports
            # written (exit 130). Twice: stop at once, without reports.
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            current = asyncio.current_task()

            def interrupted() -> None:
                if stop.is_set() and current is not None:
                    current.cancel()
                stop.set()
                progress.update(task, description="stopping after this round (Ctrl-C: now)")

            loop.add_signal_handler(signal.SIGINT, interrupted)
            try:
                return await arun_race(plan, on_round=advance, stop=stop)
            finally:
                loop.remove_signal_handler(signal.SIGINT)

        return asyncio.run(race())


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
        list[str],
        typer.Option("--data-binary", help="Body sent byte for byte, or @file; repeatable."),
    ] = [],  # noqa: B006
    json_body: Annotated[
        list[str], typer.Option("--json", help="JSON body, or @file (sets Content-Type).")
    ] = [],  # noqa: B006
    request_file: Annotated[
        Path | None, typer.Option(help="A raw HTTP request, as a proxy or browser copies it.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="race.toml for multi-request races.")] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "-n", "--count", min=1, max=10_000, help="Requests per round.", show_default="20"
        ),
    ] = None,
    technique: Annotated[str | None, typer.Option(help=f"One of: {', '.join(TECHNIQUES)}.")] = None,
    rounds: Annotated[int | None, typer.Option(min=1, max=10_000, help="Rounds to run.")] = None,
    gate_wait_ms: Annotated[
        float | None,
        typer.Option(min=0, max=10_000, help="Pause before release, ms.", show_default="100"),
    ] = None,
    connections: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="single-packet: connections to spread each batch over (auto: 4).",
            show_default="1",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.1, max=600, help="Seconds per response.", show_default="15"),
    ] = None,
    connect_timeout: Annotated[
        float | None,
        typer.Option(min=0.1, max=120, help="Seconds per connect.", show_default="5"),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("-k", "--insecure", help="Accept any TLS certificate.")
    ] = False,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=64 * 2**20,
            help="Response body bytes kept per request.",
            show_default="65536",
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
        float | None, typer.Option(help="Expected change per success.", show_default="-1")
    ] = None,
    baseline: Annotated[
        bool, typer.Option(help="Send the requests one by one first, after --reset.")
    ] = False,
    reset: Annotated[
        str | None, typer.Option(help="'METHOD URL [BODY]' sent before each round.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the full result as JSON.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML.")] = None,
    html: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report (works offline).")
    ] = None,
    no_redact: Annotated[
        bool, typer.Option("--no-redact", help="Keep Authorization and cookies in reports.")
    ] = False,
    max_requests: Annotated[
        int | None,
        typer.Option(
            min=1, help="Request budget for the whole run.", show_default=str(DEFAULT_BUDGET)
        ),
    ] = None,
) -> None:
    """Race an HTTP endpoint with synchronised requests and judge the result from invariants.

    --reset and --probe on the race's host carry its Authorization and Cookie headers. With
    --config the file describes the requests; the other options override what it says.

    Exit codes: 0 no race observed, 1 race, 2 usage error, 3 unreachable or inconclusive,
    130 stopped with Ctrl-C (the rounds done are judged and the reports written).
    """
    try:
        _check_report_path(out, "--out")
        _check_report_path(junit, "--junit")
        _check_report_path(html, "--html")
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
                ("connections", connections),
                ("max_body_bytes", max_body_bytes),
            )
            if value is not None
        }
        if insecure:
            settings["insecure"] = True
        success_flags = (success_status, success_regex, success_json_path, success_json_value)
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
                if value not in (None, [])
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
            success = _success(plan.oracle.success, *success_flags)
            changes = _oracle_changes(
                plan.requests[0], plan.oracle.probe, expect_max_successes, success,
                (probe, probe_path, probe_unit), baseline, reset,
            )  # fmt: skip
            if changes:
                plan = replace(plan, oracle=replace(plan.oracle, **changes))
        else:
            request = _request(url, method, header, (data, data_binary, json_body), request_file)
            success = _success(SuccessRule(), *success_flags)
            changes = _oracle_changes(
                request, None, expect_max_successes, success, (probe, probe_path, probe_unit),
                baseline, reset,
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
    except asyncio.CancelledError:  # Ctrl-C twice: at once, without a verdict
        err_console.print("stopped at once: no verdict, no report written")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    console.print(render_race(result))
    report = result if no_redact else result.redacted()
    try:
        if out is not None:
            out.write_text(report.to_json(), encoding="utf-8")
        if junit is not None:
            write_junit(report, junit)
        if html is not None:
            write_html(report, html)
    except OSError as exc:
        err_console.print(f"[bold red]report:[/] cannot write it: {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(EXIT_INTERRUPTED if result.stopped else result.exit_code)
