"""What a race did: per-request timings, per-round evidence and the verdict; JSON round trip."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, quote_plus

from pydantic import TypeAdapter

from toctou.engine.plan import RacePlan, RaceRequest

__all__ = [
    "REDACTED_HEADERS",
    "Attempt",
    "Outcome",
    "RaceResult",
    "RoundResult",
    "Spread",
    "Verdict",
    "spread",
]

Outcome = Literal["race", "no_race_observed", "inconclusive"]
REDACTED_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request of a batch. Times are ``time.perf_counter_ns()`` of the sending process,
    except ``server_arrival_ns``: the server's own wall clock, where it reports one."""

    index: int
    connection: int
    protocol: str
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    body_size: int = 0
    body_truncated: bool = False
    error: str | None = None
    connected_ns: int | None = None
    released_ns: int | None = None
    first_byte_ns: int | None = None
    completed_ns: int | None = None
    server_arrival_ns: int | None = None
    success: bool = False

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class Spread:
    """Max - min and population standard deviation of a set of instants, in nanoseconds."""

    count: int
    range_ns: int
    stdev_ns: float


def spread(instants: list[int]) -> Spread | None:
    if len(instants) < 2:
        return None
    return Spread(len(instants), max(instants) - min(instants), statistics.pstdev(instants))


@dataclass(frozen=True, slots=True)
class RoundResult:
    index: int
    attempts: tuple[Attempt, ...]
    successes: int
    errors: int
    probe_before: float | None = None
    probe_after: float | None = None
    reset_error: str | None = None
    probe_error: str | None = None
    batch_error: str | None = None
    violations: tuple[str, ...] = ()
    release_spread: Spread | None = None
    arrival_spread: Spread | None = None
    connections: int | None = None
    """Connections the batch went over."""
    workers: int | None = None
    """Distinct server processes that answered, where the server names them (the lab's
    ``Server-Timing: worker``); None when it does not."""

    @property
    def judged(self) -> bool:
        """False when errors leave the round unable to show a race."""
        return not (self.errors or self.reset_error or self.probe_error or self.batch_error)


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    summary: str
    evidence: tuple[str, ...] = ()
    rounds_run: int = 0
    rounds_with_race: int = 0
    detection_bound: float | None = None
    """NO RACE OBSERVED: with 95% confidence, a race that shows in a round with at least this
    probability would have shown in one of the rounds run (1 - 0.05 ** (1 / rounds))."""


@dataclass(frozen=True, slots=True)
class RaceResult:
    plan: RacePlan
    technique: str
    protocol: str
    rounds: tuple[RoundResult, ...]
    verdict: Verdict
    baseline: RoundResult | None = None
    started_at: str = ""
    duration_s: float = 0.0
    notes: tuple[str, ...] = field(default=())
    stopped: bool = False
    """Stopped (Ctrl-C) before every round ran: the verdict is over the rounds that did."""

    @property
    def exit_code(self) -> int:
        return {"no_race_observed": 0, "race": 1, "inconclusive": 3}[self.verdict.outcome]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _ADAPTER.dump_python(self, mode="json")
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RaceResult:
        return _ADAPTER.validate_python(data)

    @classmethod
    def from_json(cls, text: str | bytes | os.PathLike[str]) -> RaceResult:
        """A result from its JSON (``to_json``, ``toctou attack --out``), or from a file's path."""
        if isinstance(text, os.PathLike):
            return cls.load(text)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(
                f"not a saved result's JSON ({exc}); to read a file, pass its Path or use "
                "RaceResult.load(path)"
            ) from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RaceResult:
        """Read a result saved with ``toctou attack --out``."""
        return cls.from_json(Path(path).read_bytes())

    def redacted(self) -> RaceResult:
        """The same result with credentials masked: the Authorization, Cookie and Set-Cookie
        headers, and their secret values (a token, a cookie's value; as written, JSON-escaped
        or URL-encoded) wherever a response's headers or body repeat them (an API that echoes
        the session, a debug page)."""
        secrets = _secrets(self)
        return replace(
            self,
            plan=_redact_plan(self.plan),
            rounds=tuple(_redact_round(r, secrets) for r in self.rounds),
            baseline=_redact_round(self.baseline, secrets) if self.baseline else None,
        )


REDACTED = "[redacted]"
_MIN_SECRET = 6  # shorter values ("1", "yes") would mask ordinary text, not a credential


def _secrets(result: RaceResult) -> tuple[str, ...]:
    """The credential values a report must not show, longest first."""
    plan = result.plan
    requests = [*plan.requests, *(r for r in (plan.oracle.reset,) if r)]
    if plan.oracle.probe:
        requests.append(plan.oracle.probe.request)
    rounds = [*result.rounds, *((result.baseline,) if result.baseline else ())]
    pairs = [h for q in requests for h in q.headers]
    pairs += [h for r in rounds for a in r.attempts for h in a.headers]
    found: set[str] = set()
    for name, value in pairs:
        name = name.lower()
        if name not in REDACTED_HEADERS:
            continue
        value = value.strip()
        found.add(value)
        if name == "authorization":
            found.add(value.partition(" ")[2].strip())  # "Bearer <token>": the token alone
        cookies = value.split(";")[:1] if name == "set-cookie" else value.split(";")
        found.update(c.partition("=")[2].strip() for c in cookies)
    forms = {
        form
        for secret in found
        if len(secret) >= _MIN_SECRET
        for form in (
            secret,
            secret.replace("/", "\\/"),  # JSON as PHP writes it
            json.dumps(secret)[1:-1],  # JSON with escapes
            quote(secret, safe=""),  # a URL or form field
            quote_plus(secret),
        )
    }
    return tuple(sorted(forms, key=len, reverse=True))


def _redact(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k, REDACTED if k.lower() in REDACTED_HEADERS else v) for k, v in pairs)


def _redact_request(request: RaceRequest) -> RaceRequest:
    return replace(request, headers=_redact(request.headers))


def _masked(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _redact_round(r: RoundResult, secrets: tuple[str, ...]) -> RoundResult:
    return replace(
        r,
        attempts=tuple(
            replace(
                a,
                headers=tuple((k, _masked(v, secrets)) for k, v in _redact(a.headers)),
                body=_masked(a.body, secrets),
            )
            for a in r.attempts
        ),
    )


def _redact_plan(plan: RacePlan) -> RacePlan:
    oracle = plan.oracle
    probe = oracle.probe
    return replace(
        plan,
        requests=tuple(_redact_request(q) for q in plan.requests),
        oracle=replace(
            oracle,
            reset=_redact_request(oracle.reset) if oracle.reset else None,
            probe=replace(probe, request=_redact_request(probe.request)) if probe else None,
        ),
    )


_ADAPTER: TypeAdapter[RaceResult] = TypeAdapter(RaceResult)
