"""What a report shows about a race, as plain data: each request's outcome and times, the round
to draw, the answers grouped by status and body shape, and what changed in the state."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from toctou.engine.result import Attempt, RaceResult, RoundResult

__all__ = [
    "OUTCOMES",
    "Outcome",
    "RequestRow",
    "ResponseGroup",
    "StateChange",
    "attack_sentence",
    "body_shape",
    "drawn_round",
    "outcome",
    "request_rows",
    "response_groups",
    "state_changes",
    "worker_pid",
]

Outcome = Literal["won", "rejected", "error"]
OUTCOMES: tuple[Outcome, ...] = ("won", "rejected", "error")
# Keys whose short string values say what kind of answer a body is ("rejected", "out_of_stock");
# every other value is reduced to its type, so ids and timestamps do not split the groups.
_KIND_KEYS = frozenset({"status", "reason", "error", "code", "result", "outcome", "state", "type"})
_KIND_MAX = 40
_SHAPE_MAX = 160
_STATE_ROWS = 200
_WORKER = re.compile(r'(?:^|,)\s*worker\s*;(?:[^,]*;)?\s*desc\s*=\s*"?(\d{1,10})"?', re.I)


def outcome(attempt: Attempt) -> Outcome:
    """Won (the success rule said so), rejected (an answer that was not a success) or error
    (no answer, a 5xx, or a failure while reading it)."""
    if attempt.success:
        return "won"
    failed = attempt.error is not None and not attempt.body_truncated
    if attempt.status is None or attempt.status >= 500 or failed:
        return "error"
    return "rejected"


def worker_pid(attempt: Attempt) -> str | None:
    """The server process that answered, where ``Server-Timing`` names one (``worker;desc``)."""
    timing = attempt.header("server-timing")
    match = _WORKER.search(timing) if timing else None
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One request of a round, its sender times in ms after the round's first release and its
    server arrival in ms after the round's first arrival (the server's clock)."""

    index: int
    connection: int
    status: int | None
    outcome: Outcome
    worker: str | None
    released_ms: float | None
    first_byte_ms: float | None
    done_ms: float | None
    arrival_ms: float | None
    body: str
    body_size: int
    body_truncated: bool
    error: str | None

    @property
    def label(self) -> str:
        """The lane's name: index, status and worker."""
        status = "no answer" if self.status is None else str(self.status)
        worker = f" · pid {self.worker}" if self.worker else ""
        return f"#{self.index} · {status}{worker}"


def _offset(ns: int | None, origin: int | None) -> float | None:
    return None if ns is None or origin is None else (ns - origin) / 1e6


def request_rows(r: RoundResult) -> list[RequestRow]:
    released = [a.released_ns for a in r.attempts if a.released_ns is not None]
    arrived = [a.server_arrival_ns for a in r.attempts if a.server_arrival_ns is not None]
    t0, s0 = min(released, default=None), min(arrived, default=None)
    return [
        RequestRow(
            index=a.index,
            connection=a.connection,
            status=a.status,
            outcome=outcome(a),
            worker=worker_pid(a),
            released_ms=_offset(a.released_ns, t0),
            first_byte_ms=_offset(a.first_byte_ns, t0),
            done_ms=_offset(a.completed_ns, t0),
            arrival_ms=_offset(a.server_arrival_ns, s0),
            body=a.body,
            body_size=a.body_size,
            body_truncated=a.body_truncated,
            error=a.error,
        )
        for a in sorted(r.attempts, key=lambda a: a.index)
    ]


def drawn_round(result: RaceResult) -> RoundResult | None:
    """The round a report draws: the racy round with the most successes, else the round with
    the most successes (the first of equals); None when no round ran."""
    if not result.rounds:
        return None
    racy = [r for r in result.rounds if r.violations]
    return max(racy or result.rounds, key=lambda r: (r.successes, -r.index))


def attack_sentence(result: RaceResult) -> str:
    """The verdict as one sentence, with the first piece of evidence of a race."""
    summary = result.verdict.summary.rstrip(".")
    if result.verdict.outcome == "race" and result.verdict.evidence:
        return f"{summary} ({result.verdict.evidence[0]})."
    return f"{summary}."


def _shape(value: Any, key: str | None = None) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shape(v, k)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + (_shape(value[0]) if value else "") + "]"
    if isinstance(value, str):
        kind = key is not None and key.lower() in _KIND_KEYS and len(value) <= _KIND_MAX
        return json.dumps(value) if kind else "str"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null"


def body_shape(body: str) -> str:
    """A body with its particulars taken out: JSON as its keys and value types (answer kinds such
    as ``"status": "rejected"`` kept), other text with its digits replaced by ``N``."""
    if not body.strip():
        return "(empty)"
    try:
        shape = _shape(json.loads(body))
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        shape = "text: " + re.sub(r"\d+", "N", " ".join(body.split()))
    return shape if len(shape) <= _SHAPE_MAX else shape[: _SHAPE_MAX - 1] + "…"


@dataclass(frozen=True, slots=True)
class ResponseGroup:
    """Answers alike in status and body shape: how many in the race and in the one-by-one
    baseline (None when there was none), and one of their bodies."""

    status: str
    shape: str
    outcome: Outcome
    race: int
    baseline: int | None
    example: str


def _key(a: Attempt) -> tuple[str, str, Outcome]:
    if a.status is None:
        return "no answer", body_shape(a.error or ""), outcome(a)
    return str(a.status), body_shape(a.body), outcome(a)


def response_groups(result: RaceResult) -> list[ResponseGroup]:
    """The answers of every round, grouped, most common first, beside the baseline's."""
    raced = [a for r in result.rounds for a in r.attempts]
    alone = list(result.baseline.attempts) if result.baseline else []
    race, baseline = Counter(map(_key, raced)), Counter(map(_key, alone))
    examples: dict[tuple[str, str, Outcome], str] = {}
    for a in [*raced, *alone]:
        examples.setdefault(_key(a), a.body if a.status is not None else a.error or "")
    order = sorted(examples, key=lambda k: (-race[k], -baseline[k], k))
    return [
        ResponseGroup(
            status=k[0],
            shape=k[1],
            outcome=k[2],
            race=race[k],
            baseline=baseline[k] if result.baseline else None,
            example=examples[k],
        )
        for k in order
    ]


@dataclass(frozen=True, slots=True)
class StateChange:
    path: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path or "(state)", json.dumps(value, ensure_ascii=False)


def state_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[StateChange]:
    """Every leaf of the state before and after (``items[0].stock``), in the order they come;
    ``-`` where one side does not have it."""
    old, new = dict(_leaves(before or {})), dict(_leaves(after or {}))
    paths = list(old) + [p for p in new if p not in old]
    rows = [StateChange(p, old.get(p, "-"), new.get(p, "-")) for p in paths]
    return rows[:_STATE_ROWS]
