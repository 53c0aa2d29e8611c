"""What to send and how to judge it: frozen dataclasses that round-trip through JSON."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urlsplit

import h11
from pydantic import ConfigDict

from toctou.engine.jsonpath import compile_json_path
from toctou.errors import PlanError

__all__ = [
    "DEFAULT_BUDGET",
    "Oracle",
    "Probe",
    "RacePlan",
    "RaceRequest",
    "SuccessRule",
    "Technique",
    "Timeouts",
]

Technique = Literal["auto", "naive", "seed-style", "last-byte", "single-packet"]
TECHNIQUES: tuple[Technique, ...] = ("auto", "naive", "seed-style", "last-byte", "single-packet")
DEFAULT_BUDGET = 2000
AUTO_H2_CONNECTIONS = 4
"""Connections ``auto`` spreads a single-packet batch over: with one, every request of a round
reaches one worker of a multi-process server and a per-process lock holds (a ``mutex`` under
``--workers 2`` came out NO RACE OBSERVED while last-byte found it in 15 of 20 rounds)."""
_JSON_BYTES = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")


@dataclass(frozen=True, slots=True)
class RaceRequest:
    """One HTTP request of a race; ``offset_ms`` delays its release after the others'."""

    __pydantic_config__ = _JSON_BYTES

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    offset_ms: float = 0.0

    def __post_init__(self) -> None:
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 - raises ValueError when out of range or not a number
        except ValueError as exc:
            raise PlanError(f"not a valid URL: {self.url!r} ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PlanError(f"not an http(s) URL: {self.url!r}")
        if not parts.hostname.isascii():
            try:
                suggestion = f"; write it as {parts.hostname.encode('idna').decode()}"
            except UnicodeError:
                suggestion = ""
            raise PlanError(f"host names go in ASCII (punycode){suggestion}")
        if ":" not in parts.hostname:  # an IPv6 literal has no labels to check
            try:
                parts.hostname.encode("idna")  # empty labels, labels over 63 characters
            except UnicodeError as exc:
                raise PlanError(f"not a valid host name: {parts.hostname!r} ({exc})") from None
        if parts.username is not None or parts.password is not None:
            raise PlanError(
                "credentials in a URL are not sent: give an Authorization header instead "
                "(toctou attack turns user:password@ into one, as curl does)"
            )
        if not (self.method.isascii() and self.method.isalpha() and self.method.isupper()):
            raise PlanError(f"not an HTTP method: {self.method!r}")
        if not 0 <= self.offset_ms <= 60_000:
            raise PlanError(f"offset_ms must be within 0..60000, not {self.offset_ms}")
        try:
            self._check_head()
        except UnicodeError:  # text that came from bytes that were not UTF-8 (surrogates)
            raise PlanError(
                f"{self.method} {self.url!r}: the URL or a header is not valid UTF-8 text"
            ) from None

    def _check_head(self) -> None:
        """Reject, before anything is sent, what h11 would refuse to put on the wire."""
        for name, _ in self.headers:
            if not name.isascii():
                raise PlanError(f"header names are ASCII: {name!r}")
        headers = self.wire_headers()
        if self.header("host") is None:
            headers.append((b"Host", b"h"))
        try:
            h11.Request(method=self.method, target=self.target, headers=headers)
        except h11.LocalProtocolError as exc:
            raise PlanError(f"{self.method} {self.url}: {exc}") from None
        declared = self.header("content-length")
        if declared is not None and declared.strip() != str(len(self.body)):
            raise PlanError(
                f"Content-Length: {declared} does not match the body ({len(self.body)} bytes); "
                "leave the header out and it is set from the body"
            )

    @property
    def target(self) -> str:
        """The request target: path and query of the URL, anything but printable ASCII
        percent-encoded as UTF-8 (as browsers send it)."""
        parts = urlsplit(self.url)
        raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return "".join(c if "!" <= c <= "~" else quote(c) for c in raw)

    def wire_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as bytes: names ASCII, values UTF-8 (what curl sends for its argv)."""
        return [(k.encode("ascii"), v.encode("utf-8")) for k, v in self.headers]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: to open a connection (TCP and TLS), and for each response after release."""

    connect: float = 5.0
    response: float = 15.0


@dataclass(frozen=True, slots=True)
class SuccessRule:
    """Which responses count as a success: status set, and optionally a body regex or JSON path."""

    statuses: tuple[int, ...] = ()  # empty: any 2xx
    body_regex: str | None = None
    json_path: str | None = None
    json_value: str | None = None  # compared with str() of the value found; None: any value

    def __post_init__(self) -> None:
        for status in self.statuses:
            if not 100 <= status <= 599:
                raise PlanError(f"not an HTTP status: {status}")
        if self.json_path is not None:
            compile_json_path(self.json_path)
        if self.body_regex is not None:
            try:
                re.compile(self.body_regex)
            except re.error as exc:
                raise PlanError(f"not a regular expression: {self.body_regex!r} ({exc})") from None


@dataclass(frozen=True, slots=True)
class Probe:
    """A state read before and after each round; its change must equal successes x ``unit``.

    ``unit`` 0 means the value must not change at all, whatever succeeded: a damage counter
    such as the lab's ``$.damage`` in ``GET /lab/audit?scenario=NAME``.
    """

    request: RaceRequest
    json_path: str
    unit: float = -1.0

    def __post_init__(self) -> None:
        compile_json_path(self.json_path)
        if not math.isfinite(self.unit):
            raise PlanError(f"a probe unit must be a finite number, not {self.unit}")


@dataclass(frozen=True, slots=True)
class Oracle:
    success: SuccessRule = field(default_factory=SuccessRule)
    expect_max_successes: int | None = None
    probe: Probe | None = None
    reset: RaceRequest | None = None
    baseline: bool = False

    @property
    def judges(self) -> bool:
        """True when something can tell a race from a pass."""
        return self.expect_max_successes is not None or self.probe is not None or self.baseline


@dataclass(frozen=True, slots=True)
class RacePlan:
    """A batch of requests sent together, ``rounds`` times, and how to judge each round."""

    __pydantic_config__ = _JSON_BYTES

    requests: tuple[RaceRequest, ...]
    technique: Technique = "auto"
    rounds: int = 1
    gate_wait_ms: float = 100.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    insecure: bool = False
    max_body_bytes: int = 65_536
    budget: int = DEFAULT_BUDGET
    oracle: Oracle = field(default_factory=Oracle)
    connections: int | None = None
    """single-packet: connections to spread the batch over, their final writes back to back.
    None: one (as many as the stream limit needs), except under ``auto``, which takes
    ``AUTO_H2_CONNECTIONS``: a multi-process server serves one connection from one worker."""

    def __post_init__(self) -> None:
        if not self.requests:
            raise PlanError("a race needs at least one request")
        if self.technique not in TECHNIQUES:
            raise PlanError(f"unknown technique {self.technique!r}; valid: {', '.join(TECHNIQUES)}")
        if not 1 <= self.rounds <= 10_000:
            raise PlanError(f"rounds must be within 1..10000, not {self.rounds}")
        if self.connections is not None and not 1 <= self.connections <= 256:
            raise PlanError(f"connections must be within 1..256, not {self.connections}")
        if not 0 <= self.gate_wait_ms <= 10_000:
            raise PlanError(f"gate_wait_ms must be within 0..10000, not {self.gate_wait_ms}")
        if self.technique == "single-packet" and any(r.offset_ms for r in self.requests):
            raise PlanError(
                "single-packet sends a batch in one packet: send offsets need last-byte (or auto)"
            )
        origins = {urlsplit(r.url)[:2] for r in self.requests}
        if len(origins) > 1 and self.technique in ("single-packet",):
            raise PlanError("single-packet needs every request on one origin (scheme, host, port)")
        if self.oracle.baseline and self.oracle.reset is None:
            raise PlanError("a sequential baseline needs a reset request to start from")
        if self.planned_requests() > self.budget:
            raise PlanError(
                f"this plan sends {self.planned_requests()} requests, over the budget of "
                f"{self.budget}; raise the budget explicitly if the target can take it "
                "(--max-requests on the command line, budget in race.toml or the API)"
            )

    @classmethod
    def repeat(cls, request: RaceRequest, count: int, **options: object) -> RacePlan:
        """The same request ``count`` times."""
        if not 1 <= count <= 10_000:
            raise PlanError(f"the request count must be within 1..10000, not {count}")
        return cls(requests=(request,) * count, **options)  # type: ignore[arg-type]

    def planned_requests(self) -> int:
        """Every request the run will send: the batches, resets, probes and the baseline."""
        per_round = len(self.requests)
        per_round += 1 if self.oracle.reset else 0
        per_round += 2 if self.oracle.probe else 0
        baseline = (
            (len(self.requests) + 1 + (2 if self.oracle.probe else 0))
            if self.oracle.baseline
            else 0
        )
        return per_round * self.rounds + baseline
