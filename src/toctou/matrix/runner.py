"""Run the matrix: start a lab per backend x workers, race every scenario x strategy from its
catalogue, judge each round by the lab's own audit and compare with the catalogue's claim.

Like the demo, this sits above the lab and the engine: it starts ``toctou serve`` as a child
process and talks to it over HTTP only (the catalogue, the resets, the audits), and races with
the engine.
"""

from __future__ import annotations

import asyncio
import json
import platform
import re
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from toctou.catalogue import (
    CatalogueError,
    RecipeInfo,
    ScenarioInfo,
    StrategyInfo,
    fetch_catalogue,
    recipe_plan,
    scale_recipe,
)
from toctou.engine import RaceRequest, RaceResult, Technique, arun_race
from toctou.engine.result import Attempt
from toctou.matrix.result import LabRun, MatrixCell, MatrixResult, MatrixRound, Throughput
from toctou.urls import safe_url

__all__ = [
    "DEFAULT_ROUNDS",
    "DEFAULT_WORKERS",
    "FilterError",
    "MatrixOptions",
    "Progress",
    "matrix_cells",
    "run_lab_cells",
    "run_matrix",
]

DEFAULT_ROUNDS = 5
DEFAULT_WORKERS = (1, 4)
GATE_WAIT_MS = 20.0  # last-byte: time for every connection to be accepted before the release
_LIBRARIES = (
    "toctou", "httpx", "h11", "h2", "pydantic", "fastapi", "starlette", "uvicorn", "hypercorn",
    "sqlalchemy", "aiosqlite", "asyncpg", "asyncmy", "redis", "tenacity", "jinja2", "plotly",
)  # fmt: skip
Backend = Literal["sqlite", "postgresql", "mariadb"]


@dataclass(frozen=True, slots=True)
class MatrixOptions:
    databases: tuple[str | None, ...] = (None,)
    """Database URLs, one lab each; ``None``: a fresh SQLite file."""
    workers: tuple[int, ...] = DEFAULT_WORKERS
    scenarios: tuple[str, ...] = ()
    """Only these scenarios (all when empty)."""
    strategies: tuple[str, ...] = ()
    """Only these strategies (all when empty)."""
    rounds: int = DEFAULT_ROUNDS
    window_ms: float | None = None
    """The race window every request asks the lab for; None: each recipe's own."""
    technique: Technique = "auto"
    requests: int | None = None
    """Concurrent requests per round for recipes of one request; None: the recipe's own."""
    quick: bool = False
    """A small subset: per scenario the vulnerable strategy, its best fixes and one that holds
    with one worker only; one round per cell."""
    throughput_s: float = 0.0
    """Seconds of load per cell that the catalogue claims safe there; 0: none."""
    redis_url: str | None = None
    command: tuple[str, ...] = ()


class FilterError(ValueError):
    """``--scenario`` or ``--strategy`` names nothing in the lab's catalogue."""


class Progress:
    """What a runner tells its caller as it goes (the CLI draws a progress bar from it)."""

    def total(self, cells: int) -> None:
        """The number of cells expected (known once the first lab's catalogue was read)."""

    def lab(self, backend: str, workers: int) -> None:
        """A lab is starting."""

    def cell(self, cell: MatrixCell) -> None:
        """A cell is done."""


def matrix_cells(
    catalogue: dict[str, ScenarioInfo], options: MatrixOptions
) -> list[tuple[ScenarioInfo, StrategyInfo]]:
    """The scenario x strategy pairs the options select, in catalogue order.

    Raises FilterError when a filter names a scenario or strategy the catalogue lacks."""
    for name in options.scenarios:
        if name not in catalogue:
            raise FilterError(f"no scenario {name!r}; valid: {', '.join(catalogue)}")
    known = dict.fromkeys(s.name for info in catalogue.values() for s in info.strategies)
    for name in options.strategies:
        if name not in known:
            raise FilterError(f"no strategy {name!r} in any scenario; valid: {', '.join(known)}")
    chosen = []
    for info in catalogue.values():
        if options.scenarios and info.name not in options.scenarios:
            continue
        names = _quick_strategies(info) if options.quick else [s.name for s in info.strategies]
        for strategy in info.strategies:
            if strategy.name in names and (
                not options.strategies or strategy.name in options.strategies
            ):
                chosen.append((info, strategy))
    return chosen


def needs_missing(strategy: StrategyInfo, options: MatrixOptions) -> str | None:
    """What the strategy needs that the matrix was not given, if anything."""
    if "redis" in strategy.needs and not options.redis_url:
        return "needs Redis (--redis URL or TOCTOU_REDIS_URL)"
    return None


def _quick_strategies(info: ScenarioInfo) -> list[str]:
    """The vulnerable strategy, the first clean fix and the first per-process one."""
    vulnerable = [s.name for s in info.strategies if s.never_holds][:1]
    clean = [s for s in info.strategies if s.holds_everywhere and s.errors is None]
    fixes = [s.name for s in clean if not s.needs][:1]
    local = [s.name for s in info.strategies if "one-worker" in s.holds.values()][:1]
    return vulnerable + fixes + local


def run_matrix(options: MatrixOptions, progress: Progress | None = None) -> MatrixResult:
    """Every lab of ``options`` in turn, every selected cell in each."""
    from toctou.lab.process import LabStartError, serve_lab  # the lab extra: only here

    progress = progress or Progress()
    started = datetime.now(UTC)
    clock = time.perf_counter()
    labs: list[LabRun] = []
    cells: list[MatrixCell] = []
    totalled = False
    skipped: dict[str, str] = {}
    for database in options.databases:
        for workers in options.workers:
            backend = backend_of(database)
            progress.lab(backend, workers)
            done: list[MatrixCell] = []
            try:
                with serve_lab(
                    db_url=database, workers=workers, redis_url=options.redis_url
                ) as lab:
                    catalogue = fetch_catalogue(lab.base_url)
                    selected = []
                    for info, strategy in matrix_cells(catalogue, options):
                        if missing := needs_missing(strategy, options):
                            skipped.setdefault(f"{info.name}/{strategy.name}", missing)
                        else:
                            selected.append((info, strategy))
                    if not totalled:
                        progress.total(
                            len(selected) * len(options.databases) * len(options.workers)
                        )
                        totalled = True
                    asyncio.run(
                        run_lab_cells(
                            lab.base_url, backend, workers, selected, options, progress, done
                        )
                    )
                    labs.append(_lab_run(lab.base_url, database, backend, workers))
            except (LabStartError, CatalogueError, httpx.HTTPError, OSError) as exc:
                # the cells done before it failed are kept; the lab's error says where it stopped
                stopped = f"stopped after {len(done)} cell(s): " if done else ""
                said = str(exc)
                if database:  # the lab's log may repeat the URL as given
                    said = said.replace(database, _safe_url(database))
                labs.append(
                    LabRun(
                        backend=backend,
                        workers=workers,
                        database=_safe_url(database),
                        error=stopped + _lab_error(said),
                    )
                )
            cells.extend(done)
    return MatrixResult(
        command=tuple(_safe_arg(arg) for arg in options.command),
        started_at=started.isoformat(),
        duration_s=round(time.perf_counter() - clock, 3),
        versions=_versions(labs, options.redis_url),
        rounds=1 if options.quick else options.rounds,
        window_ms=options.window_ms,
        technique=options.technique,
        requests=options.requests,
        redis=_safe_url(options.redis_url) if options.redis_url else None,
        labs=tuple(labs),
        cells=tuple(cells),
        skipped=tuple(f"{cell}: {why}" for cell, why in skipped.items()),
    )


async def run_lab_cells(
    base_url: str,
    backend: Backend,
    workers: int,
    selected: Sequence[tuple[ScenarioInfo, StrategyInfo]],
    options: MatrixOptions,
    progress: Progress | None = None,
    into: list[MatrixCell] | None = None,
) -> list[MatrixCell]:
    """Every selected cell against the running lab at ``base_url``, each appended to ``into``
    (returned) as it is done."""
    progress = progress or Progress()
    cells = [] if into is None else into
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for info, strategy in selected:
            cell = await _run_cell(client, base_url, backend, workers, info, strategy, options)
            progress.cell(cell)
            cells.append(cell)
    return cells


@dataclass
class _Round:
    record: MatrixRound
    race: RaceResult | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    @property
    def broken(self) -> bool:
        """The audit after the round was read and found damage (judged, whatever else
        went wrong in the round: the audit is the judge)."""
        return self.after is not None and (bool(self.record.damage) or not self.record.holds)


class _AuditError(Exception):
    """The lab's audit could not be read or was not in its documented shape."""


class _Invariant(BaseModel):
    violations: list[str]


class _Audit(BaseModel):
    """The part of ``GET /lab/audit``'s scenario entry the matrix reads."""

    holds: bool
    damage: int
    invariants: list[_Invariant]
    state: dict[str, Any]


async def _run_cell(
    client: httpx.AsyncClient,
    base_url: str,
    backend: Backend,
    workers: int,
    info: ScenarioInfo,
    strategy: StrategyInfo,
    options: MatrixOptions,
) -> MatrixCell:
    claimed_safe = strategy.holds_with(backend, workers)
    base = {
        "scenario": info.name,
        "strategy": strategy.name,
        "backend": backend,
        "workers": workers,
        "damage_unit": info.damage_unit,
        "claimed": strategy.holds[backend],
        "claimed_safe": claimed_safe,
        "needs": strategy.needs,
    }
    try:
        recipe = (
            info.race if options.requests is None else scale_recipe(info.race, options.requests)
        )
    except CatalogueError:
        recipe = info.race  # several kinds of request: the count is the recipe's
    rounds = [
        await _run_round(client, base_url, info, strategy, recipe, options, index)
        for index in range(1 if options.quick else options.rounds)
    ]
    racy = [r for r in rounds if r.broken]
    unjudged = [r for r in rounds if r.record.error and not r.broken]
    verdict: Literal["safe", "racy", "errors"]
    verdict = "racy" if racy else "errors" if unjudged else "safe"
    sample = max(rounds, key=lambda r: (r.race is not None, r.record.damage, not r.record.holds))
    throughput = None
    if options.throughput_s and claimed_safe and verdict == "safe":
        try:
            throughput = await _throughput(client, base_url, recipe, strategy.name, options)
        except _AuditError:  # its reset failed: the cell's verdict stands, without a load
            throughput = None
    return MatrixCell(
        **base,
        verdict=verdict,
        as_claimed=None if verdict == "errors" else (verdict == "safe") == claimed_safe,
        worst_damage=max(r.record.damage for r in rounds),
        window_ms=_window(recipe, options),
        rounds_affected=len(racy),
        technique=sample.race.technique if sample.race else "",
        protocol=sample.race.protocol if sample.race else "",
        rounds=tuple(r.record for r in rounds),
        sample=sample.race.redacted() if sample.race else None,
        state_before=sample.before,
        state_after=sample.after,
        throughput=throughput,
        error=unjudged[0].record.error if verdict == "errors" else None,
    )


async def _run_round(
    client: httpx.AsyncClient,
    base_url: str,
    info: ScenarioInfo,
    strategy: StrategyInfo,
    recipe: RecipeInfo,
    options: MatrixOptions,
    index: int,
) -> _Round:
    plan = recipe_plan(
        base_url,
        recipe,
        strategy.name,
        window_ms=_window(recipe, options),
        technique=options.technique,
        gate_wait_ms=GATE_WAIT_MS,
    )
    reset = plan.oracle.reset
    assert reset is not None  # every recipe resets its scenario
    try:
        await _send(client, reset)
        before = await _audit(client, info.name)
    except _AuditError as exc:
        return _Round(_unjudged(index, f"reset or audit failed: {exc}"))
    # The reset ran above: the engine must not run it again between the audit and the race.
    # The result keeps the recipe's plan, reset included, so its command reproduces the round.
    race = await arun_race(replace(plan, oracle=replace(plan.oracle, reset=None)))
    race = replace(race, plan=plan)
    try:
        after = await _audit(client, info.name)
    except _AuditError as exc:
        return _Round(_unjudged(index, f"audit failed: {exc}"), race, before.state)
    attempts = race.rounds[0].attempts if race.rounds else ()
    successes = sum(a.success for a in attempts)
    errors = sum(a.status is None or a.status >= 500 for a in attempts)
    error = None
    if not race.rounds or race.rounds[0].batch_error:
        error = race.rounds[0].batch_error if race.rounds else race.verdict.summary
    elif not successes:
        error = f"no request succeeded ({_answers(attempts)})"
    elif errors and strategy.errors is None:
        error = (
            f"{errors} request(s) got a 5xx or no answer ({_answers(attempts)}), "
            "which the catalogue does not say this strategy answers"
        )
    spread = race.rounds[0].arrival_spread if race.rounds else None
    record = MatrixRound(
        index=index,
        damage=after.damage,
        holds=after.holds,
        successes=successes,
        rejections=sum(
            a.status is not None and 400 <= a.status < 500 and not a.success for a in attempts
        ),
        errors=errors,
        retries=sum(_retries(a) for a in attempts),
        arrival_spread_ms=round(spread.range_ns / 1e6, 3) if spread else None,
        violations=tuple(v for i in after.invariants for v in i.violations),
        error=_first_line(error) if error else None,
    )
    return _Round(record, race, before.state, after.state)


async def _send(client: httpx.AsyncClient, request: RaceRequest) -> None:
    """Send a reset; a failure or an answer that is not 2xx is an ``_AuditError``."""
    try:
        reply = await client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        raise _AuditError(f"{request.method} {request.url}: {exc}") from None


def _window(recipe: RecipeInfo, options: MatrixOptions) -> float:
    return recipe.window_ms if options.window_ms is None else options.window_ms


def _unjudged(index: int, error: str) -> MatrixRound:
    return MatrixRound(
        index=index,
        damage=0,
        holds=True,
        successes=0,
        rejections=0,
        errors=0,
        retries=0,
        arrival_spread_ms=None,
        error=_first_line(error),
    )


async def _audit(client: httpx.AsyncClient, scenario: str) -> _Audit:
    try:
        reply = await client.get("/lab/audit", params={"scenario": scenario})
        reply.raise_for_status()
        return _Audit.model_validate(reply.json()["scenarios"][scenario])
    except (httpx.HTTPError, ValueError, LookupError, TypeError, RecursionError) as exc:
        raise _AuditError(f"GET /lab/audit?scenario={scenario}: {exc}") from None


def _answers(attempts: Sequence[Attempt]) -> str:
    counts = Counter(
        str(a.status) if a.status is not None else (a.error or "no answer") for a in attempts
    )
    return ", ".join(f"{answer} x {n}" for answer, n in counts.most_common()) or "nothing sent"


def _retries(attempt: Attempt) -> int:
    """The lab's success bodies say how many transactions they took (``attempts``)."""
    if not attempt.success:
        return 0
    try:
        taken = json.loads(attempt.body).get("attempts")
    except (ValueError, AttributeError, RecursionError):  # a body that is not the lab's
        return 0
    return max(taken - 1, 0) if isinstance(taken, int) else 0


async def _throughput(
    client: httpx.AsyncClient,
    base_url: str,
    recipe: RecipeInfo,
    strategy: str,
    options: MatrixOptions,
) -> Throughput:
    """Bursts of the recipe's requests, back to back for ``throughput_s`` seconds, the
    scenario reset before each: purchases per second and latency under contention for one
    row. Sent with httpx (keep-alive, one connection per concurrent request)."""
    plan = recipe_plan(base_url, recipe, strategy, window_ms=0)
    reset = plan.oracle.reset
    assert reset is not None
    latencies: list[float] = []
    successes = errors = 0
    statuses = set(recipe.success_statuses) or set(range(200, 300))
    limits = httpx.Limits(max_connections=len(plan.requests))
    async with httpx.AsyncClient(timeout=30, limits=limits) as load:

        async def one(request: Any) -> None:
            nonlocal successes, errors
            sent = time.perf_counter()
            try:
                reply = await load.request(
                    request.method, request.url, headers=dict(request.headers), content=request.body
                )
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append((time.perf_counter() - sent) * 1e3)
            successes += reply.status_code in statuses
            errors += reply.status_code >= 500

        clock = time.perf_counter()
        while time.perf_counter() - clock < options.throughput_s:
            await _send(client, reset)
            await asyncio.gather(*(one(r) for r in plan.requests))
        seconds = time.perf_counter() - clock
    ordered = sorted(latencies) or [0.0]
    return Throughput(
        clients=len(plan.requests),
        seconds=round(seconds, 3),
        requests=len(latencies),
        successes=successes,
        errors=errors,
        per_second=round(len(latencies) / seconds, 1),
        successes_per_second=round(successes / seconds, 1),
        p50_ms=round(statistics.median(ordered), 3),
        p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    )


def backend_of(database: str | None) -> Backend:
    """The lab backend a database URL names (None: SQLite); FilterError if none."""
    scheme = urlsplit(database).scheme.split("+")[0] if database else "sqlite"
    backend = {"postgres": "postgresql", "mysql": "mariadb"}.get(scheme, scheme)
    if backend not in ("sqlite", "postgresql", "mariadb"):
        raise FilterError(
            f"not a database URL the lab knows: {_safe_url(database)} "
            "(sqlite, sqlite:///PATH, postgresql://..., mysql://... or mariadb://...)"
        )
    return backend  # type: ignore[return-value]


def _safe_url(database: str | None) -> str:
    """The URL without its password (a report is shared)."""
    if not database:
        return "sqlite (a fresh file)"
    return safe_url(database)


def _safe_arg(arg: str) -> str:
    """A command-line argument with any URL's password masked (``URL`` or ``--opt=URL``)."""
    flag, equals, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if "://" not in value:
        return arg
    return flag + equals + _safe_url(value)


def _lab_run(base_url: str, database: str | None, backend: Backend, workers: int) -> LabRun:
    try:
        health = httpx.get(f"{base_url}/health", timeout=10).json()
        version = str(health.get("database_version") or "")
    except (httpx.HTTPError, ValueError, AttributeError):
        version = ""
    return LabRun(
        backend=backend, workers=workers, database=_safe_url(database), server_version=version
    )


def _redis_version(url: str) -> str:
    """The Redis server's version (``INFO server``), or why it could not be read."""
    try:
        import redis  # the lab extra's; the matrix runs only with the lab installed
    except ImportError:
        return "unknown (redis-py is not installed)"
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return str(client.info("server").get("redis_version", "unknown"))
    except redis.RedisError as exc:
        return f"unknown ({exc})"
    finally:
        client.close()


def _versions(labs: Sequence[LabRun], redis_url: str | None) -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite library": sqlite3.sqlite_version}
    for name in _LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    for lab in labs:
        if lab.server_version:
            found[f"{lab.backend} server"] = lab.server_version
    if redis_url:
        found["redis server"] = _redis_version(redis_url)
    return found


def _lab_error(text: str) -> str:
    """A lab's start-up failure in one line: what happened, and the exception its log ends
    with (the log itself stays out of the report: it can be hundreds of lines)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    said = [line for line in lines[1:] if line.startswith("error: ")]  # toctou serve's own
    if said:
        return f"{lines[0].rstrip(':')}: {said[-1].removeprefix('error: ')}"
    raised = [line for line in lines[1:] if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)]
    head = lines[0].rstrip(":") if lines else "the lab did not start"
    return f"{head}: {raised[-1]}" if raised else head


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"
