"""Run a plan: choose the technique, reset, probe, fire each round, judge. No printing here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from toctou.engine.jsonpath import json_value
from toctou.engine.lastbyte import run_http1, send_one
from toctou.engine.oracle import (
    blind_spots,
    is_success,
    learn_unit,
    round_violations,
    success_shapes,
    verdict,
)
from toctou.engine.plan import AUTO_H2_CONNECTIONS, Oracle, RacePlan, RaceRequest, Technique
from toctou.engine.result import Attempt, RaceResult, RoundResult, Verdict, spread
from toctou.engine.singlepacket import probe_h2c, run_http2
from toctou.engine.target import Origin, open_connection
from toctou.engine.timing import server_worker
from toctou.errors import TargetError

__all__ = ["arun_race", "choose_technique", "run_race"]

OnRound = Callable[[RoundResult], None]
# A probe's JSON is read whole, whatever the race's own cap (--max-body-bytes) keeps in reports.
PROBE_BODY = 8 * 2**20


async def choose_technique(plan: RacePlan) -> tuple[Technique, str]:
    """``auto`` becomes single-packet when the server speaks HTTP/2, else last-byte."""
    if plan.technique != "auto":
        return plan.technique, f"technique {plan.technique} as asked"
    origin = Origin.of(plan.requests[0].url)
    if any(r.offset_ms for r in plan.requests):
        return "last-byte", "auto: last-byte, because requests have send offsets"
    if len({Origin.of(r.url) for r in plan.requests}) > 1:
        return "last-byte", "auto: last-byte, because requests go to several origins"
    if origin.tls:
        conn = await open_connection(
            origin, alpn=["h2", "http/1.1"], insecure=plan.insecure, timeout_s=plan.timeouts.connect
        )
        await conn.aclose()
        if conn.alpn == "h2":
            return "single-packet", "auto: single-packet, the server chose h2 by ALPN"
        return "last-byte", f"auto: last-byte, the server chose {conn.alpn or 'HTTP/1.1'} by ALPN"
    if await probe_h2c(plan, origin):
        return "single-packet", "auto: single-packet, the server speaks h2c (prior knowledge)"
    return "last-byte", "auto: last-byte, the server does not speak h2c"


async def _send_batch(plan: RacePlan) -> list[Attempt]:
    if plan.technique == "single-packet":
        return await run_http2(plan)
    return await run_http1(plan)


async def _read_probe(plan: RacePlan) -> float:
    probe = plan.oracle.probe
    assert probe is not None
    attempt = await send_one(plan, probe.request, max_body=max(plan.max_body_bytes, PROBE_BODY))
    if attempt.error or attempt.status is None or not 200 <= attempt.status < 300:
        raise TargetError(attempt.error or f"probe answered {attempt.status}")
    try:
        value: float = float(json_value(attempt.body, probe.json_path))
    except (LookupError, TypeError, ValueError) as exc:
        raise TargetError(f"probe value at {probe.json_path}: {exc}") from None
    return value


async def _reset(plan: RacePlan, reset: RaceRequest) -> str | None:
    attempt = await send_one(plan, reset)
    if attempt.error and not attempt.body_truncated:  # only its status matters
        return attempt.error
    if attempt.status is None or not 200 <= attempt.status < 300:
        return f"reset answered {attempt.status}"
    return None


async def _round(
    plan: RacePlan, index: int, baseline: RoundResult | None, *, sequential: bool = False
) -> RoundResult:
    oracle = plan.oracle
    if oracle.reset is not None:
        error = await _reset(plan, oracle.reset)
        if error:
            return RoundResult(index, (), 0, 0, reset_error=error)
    try:
        before = await _read_probe(plan) if oracle.probe else None
    except TargetError as exc:
        return RoundResult(index, (), 0, 0, probe_error=f"before the round: {exc}")
    try:
        if sequential:
            sent = [await send_one(plan, r, i) for i, r in enumerate(plan.requests)]
        else:
            sent = await _send_batch(plan)
    except TargetError as exc:
        return RoundResult(index, (), 0, 0, batch_error=str(exc))
    attempts = tuple(replace(a, success=is_success(a, oracle.success)) for a in sent)
    successes = sum(a.success for a in attempts)
    errors = sum(a.error is not None and not a.body_truncated for a in attempts)
    try:
        after = await _read_probe(plan) if oracle.probe else None
    except TargetError as exc:
        return RoundResult(
            index, attempts, successes, errors, probe_error=f"after the round: {exc}"
        )
    return RoundResult(
        index=index,
        attempts=attempts,
        successes=successes,
        errors=errors,
        probe_before=before,
        probe_after=after,
        violations=()
        if sequential
        else round_violations(oracle, successes, before, after, baseline),
        release_spread=spread([a.released_ns for a in attempts if a.released_ns is not None]),
        connections=len({a.connection for a in attempts}) or None,
        workers=len({w for a in attempts if (w := server_worker(a.headers))}) or None,
        arrival_spread=spread(
            [a.server_arrival_ns for a in attempts if a.server_arrival_ns is not None]
        ),
    )


def _reach(rounds: list[RoundResult]) -> str | None:
    """How many connections and server processes the rounds reached: a NO RACE is only true
    for what was tested (one worker cannot show a race between workers)."""
    connections = sorted({r.connections for r in rounds if r.connections})
    workers = sorted({r.workers for r in rounds if r.workers})
    if not connections:
        return None
    said = f"each round went over {_span(connections)} connection(s)"
    if not workers:
        return said + "; the server does not say which process served a request"
    said += f" and reached {_span(workers)} server process(es) (Server-Timing: worker)"
    if workers == [1]:
        said += (
            ": a race between the processes of a multi-process server was not tested "
            "(more connections, --connections or last-byte, reach more)"
        )
    return said


def _span(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def _rejudge(r: RoundResult, oracle: Oracle, baseline: RoundResult | None) -> RoundResult:
    """``r`` judged by ``oracle``: its successes and the invariants it broke."""
    if r.reset_error or r.probe_error or r.batch_error:
        return r  # nothing was judged, nothing changes
    attempts = tuple(replace(a, success=is_success(a, oracle.success)) for a in r.attempts)
    successes = sum(a.success for a in attempts)
    violations = (
        ()
        if r.index < 0  # the sequential baseline is what the rounds are compared with
        else round_violations(oracle, successes, r.probe_before, r.probe_after, baseline)
    )
    return replace(r, attempts=attempts, successes=successes, violations=violations)


async def arun_race(
    plan: RacePlan, *, on_round: OnRound | None = None, stop: asyncio.Event | None = None
) -> RaceResult:
    """Run every round of ``plan`` and judge them; once ``stop`` is set (Ctrl-C), no further
    round starts and the rounds done so far are judged (``RaceResult.stopped``).

    >>> plan = RacePlan.repeat(RaceRequest("http://127.0.0.1:8000/buy", "POST"), 20,
    ...                        oracle=Oracle(expect_max_successes=1))  # doctest: +SKIP
    >>> run_race(plan).verdict.outcome  # doctest: +SKIP
    'race'
    """
    started = datetime.now(UTC)
    clock = time.perf_counter()
    try:
        technique, note = await choose_technique(plan)
    except TargetError as exc:  # auto could not even ask the server: nothing was sent
        return RaceResult(
            plan=plan,
            technique=plan.technique,
            protocol="-",
            rounds=(),
            verdict=Verdict("inconclusive", f"INCONCLUSIVE: {exc}"),
            started_at=started.isoformat(),
            duration_s=time.perf_counter() - clock,
            notes=("auto: the target did not answer the protocol check",),
        )
    notes = [note]
    if technique == "single-packet" and any(not r.body for r in plan.requests):
        notes.append(
            "body-less requests: only an empty END_STREAM frame is held back, and servers that "
            "start a request on its HEADERS (hypercorn does) run it before the release unless "
            "the application first waits for the end of the stream (the toctou lab does on its "
            "database routes); the HEADERS of one connection still leave in one write"
        )
    chosen = replace(plan, technique=technique)
    if plan.technique == "auto" and technique == "single-packet" and plan.connections is None:
        chosen = replace(chosen, connections=min(AUTO_H2_CONNECTIONS, len(plan.requests)))
        notes.append(
            f"auto: single-packet over {chosen.connections} connections released together, so "
            "the workers of a multi-process server share each batch (--connections to choose)"
        )
    baseline = await _round(chosen, -1, None, sequential=True) if plan.oracle.baseline else None
    rounds: list[RoundResult] = []
    for index in range(plan.rounds):
        if stop is not None and stop.is_set():
            notes.append(f"stopped after {len(rounds)} of {plan.rounds} round(s)")
            break
        result = await _round(chosen, index, baseline)
        rounds.append(result)
        if on_round is not None:
            on_round(result)
    # Judged again once every answer is in: the success rule may need the answers' shapes, and
    # the probe's unit the baseline's successes under that rule.
    shapes = success_shapes(plan.oracle, plan.requests, rounds, baseline)
    judging = replace(plan.oracle, success=shapes.rule) if shapes.rule else plan.oracle
    baseline = _rejudge(baseline, judging, None) if baseline else None
    judging, unit_note = learn_unit(judging, baseline)
    rounds = [_rejudge(r, judging, baseline) for r in rounds]
    notes += [n for n in (shapes.note, unit_note, _reach(rounds), *blind_spots(judging)) if n]
    judged = verdict(judging, rounds, baseline)
    if not rounds:
        judged = Verdict("inconclusive", "INCONCLUSIVE: stopped before any round ran")
    elif shapes.ambiguity:
        judged = Verdict(
            "inconclusive",
            f"INCONCLUSIVE: the 2xx answers are not all alike ({shapes.ambiguity}), so they "
            "cannot all count as successes: say which are (--success-json-path and "
            "--success-json-value, --success-regex or --success-status)",
            judged.evidence,
            judged.rounds_run,
            judged.rounds_with_race,
        )
    return RaceResult(
        plan=plan,
        technique=technique,
        protocol="HTTP/2" if technique == "single-packet" else "HTTP/1.1",
        rounds=tuple(rounds),
        verdict=judged,
        baseline=baseline,
        started_at=started.isoformat(),
        duration_s=time.perf_counter() - clock,
        notes=tuple(notes),
        stopped=len(rounds) < plan.rounds,
    )


def run_race(plan: RacePlan, *, on_round: OnRound | None = None) -> RaceResult:
    """Blocking twin of :func:`arun_race`."""
    return asyncio.run(arun_race(plan, on_round=on_round))
