"""The commands that reproduce a race: ``toctou attack`` with the plan's requests and oracle as
flags (a ``race.toml`` for the requests when they differ), and ``toctou serve`` for a lab."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from itertools import groupby
from urllib.parse import urlsplit

from toctou.engine.plan import DEFAULT_BUDGET, Oracle, RacePlan, RaceRequest, Timeouts

__all__ = ["Reproduction", "attack_command", "race_toml", "serve_command"]

_DEFAULTS = RacePlan(requests=(RaceRequest("http://h/"),))
_TIMEOUTS = Timeouts()
_BREAK = " \\\n    "


@dataclass(frozen=True, slots=True)
class Reproduction:
    """A command, the ``race.toml`` it reads (None when it reads none), and notes on what it
    cannot say (a body that is not text)."""

    command: str
    config: str | None = None
    notes: tuple[str, ...] = ()


def _join(groups: list[list[str]]) -> str:
    return _BREAK.join(shlex.join(g) for g in groups if g)


def _body_text(body: bytes) -> str | None:
    """The body as an argument can carry it, None when it cannot (not UTF-8, or ``@...``,
    which ``--data-binary`` would read as a file name)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if text.startswith("@") else text


def _request_flags(request: RaceRequest, notes: list[str]) -> list[list[str]]:
    groups = [[request.url]]
    if request.method != ("POST" if request.body else "GET"):
        groups.append(["-X", request.method])
    groups += [["-H", f"{k}: {v}" if v else f"{k};"] for k, v in request.headers]
    if request.body:
        text = _body_text(request.body)
        if text is None:
            notes.append(f"the body ({len(request.body)} bytes) is not text: save it as body.bin")
        groups.append(["--data-binary", "@body.bin" if text is None else text])
    return groups


def _spec(request: RaceRequest) -> str:
    """A reset or probe as ``'METHOD URL [BODY]'`` (a GET without a body: the URL alone)."""
    if request.method == "GET" and not request.body:
        return request.url
    body = request.body.decode("utf-8", "replace")
    return " ".join(part for part in (request.method, request.url, body) if part)


def _oracle_flags(oracle: Oracle) -> list[list[str]]:
    rule = oracle.success
    groups = [["--success-status", str(s)] for s in rule.statuses]
    for flag, value in (
        ("--success-regex", rule.body_regex),
        ("--success-json-path", rule.json_path),
        ("--success-json-value", rule.json_value),
    ):
        if value is not None:
            groups.append([flag, value])
    if oracle.expect_max_successes is not None:
        groups.append(["--expect-max-successes", str(oracle.expect_max_successes)])
    if oracle.reset is not None:
        groups.append(["--reset", _spec(oracle.reset)])
    if oracle.probe is not None:
        groups.append(["--probe", _spec(oracle.probe.request)])
        groups.append(["--probe-path", oracle.probe.json_path])
        if oracle.probe.unit != -1:
            groups.append(["--probe-unit", _number(oracle.probe.unit)])
    if oracle.baseline:
        groups.append(["--baseline"])
    return groups


def _run_flags(plan: RacePlan) -> list[list[str]]:
    groups = [] if plan.technique == "auto" else [["--technique", plan.technique]]
    for flag, value, default in (
        ("--rounds", plan.rounds, _DEFAULTS.rounds),
        ("--gate-wait-ms", plan.gate_wait_ms, _DEFAULTS.gate_wait_ms),
        ("--timeout", plan.timeouts.response, _TIMEOUTS.response),
        ("--connect-timeout", plan.timeouts.connect, _TIMEOUTS.connect),
        ("--max-body-bytes", plan.max_body_bytes, _DEFAULTS.max_body_bytes),
        ("--max-requests", plan.budget, DEFAULT_BUDGET),
    ):
        if value != default:
            groups.append([flag, _number(value)])
    if plan.connections is not None:
        groups.append(["--connections", str(plan.connections)])
    return groups + ([["--insecure"]] if plan.insecure else [])


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def race_toml(plan: RacePlan) -> str:
    """The plan's requests as ``race.toml`` ``[[requests]]`` tables, equal neighbours counted."""
    tables = []
    for request, same in groupby(plan.requests):
        lines = ["[[requests]]", f"url = {_toml(request.url)}", f"method = {_toml(request.method)}"]
        if request.headers:
            pairs = ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in request.headers)
            lines.append(f"headers = {{ {pairs} }}")
        if request.body:
            lines.append(f"body = {_toml(request.body.decode('utf-8', 'replace'))}")
        lines.append(f"count = {len(list(same))}")
        if request.offset_ms:
            lines.append(f"offset_ms = {_number(request.offset_ms)}")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def _toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL is the one control JSON keeps)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def attack_command(plan: RacePlan) -> Reproduction:
    """``toctou attack`` with every flag the plan needs; a plan of different requests, or with
    send offsets, reads them from ``race.toml``."""
    notes: list[str] = []
    first = plan.requests[0]
    if all(r == first for r in plan.requests) and not first.offset_ms:
        groups = [["toctou", "attack"], *_request_flags(first, notes)]
        groups.append(["-n", str(len(plan.requests))])
        config = None
    else:
        groups = [["toctou", "attack", "--config", "race.toml"]]
        config = race_toml(plan)
    groups += _run_flags(plan) + _oracle_flags(plan.oracle)
    return Reproduction(_join(groups), config, tuple(notes))


def serve_command(
    plan: RacePlan, *, workers: int, database: str | None, http2: bool, redis: str | None = None
) -> str:
    """``toctou serve`` for the lab the plan raced: its port, workers, database (None: a
    fresh SQLite file) and Redis (for the strategies that need one)."""
    port = urlsplit(plan.requests[0].url).port
    groups = [["toctou", "serve"], ["--port", str(port or 8000)], ["--workers", str(workers)]]
    if database:
        groups.append(["--db", database])
    if redis:
        groups.append(["--redis", redis])
    if http2:
        groups.append(["--http2"])
    return _join(groups)
