"""``race.toml``: a multi-request race written down, validated into a :class:`RacePlan`.

Example::

    technique = "last-byte"
    rounds = 5

    [[requests]]
    url = "http://127.0.0.1:8000/cart/checkout"
    method = "POST"
    json = { cart = 1 }
    count = 1

    [[requests]]
    url = "http://127.0.0.1:8000/cart/add"
    method = "POST"
    json = { item = "jacket" }
    count = 5
    offset_ms = 2

    [oracle]
    expect_max_successes = 1
    reset = "POST http://127.0.0.1:8000/lab/reset {\\"item_id\\": 1, \\"stock\\": 1}"
    probe = { url = "http://127.0.0.1:8000/inventory/items/1", path = "$.stock", unit = -1 }
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from toctou.engine.plan import (
    DEFAULT_BUDGET,
    Oracle,
    Probe,
    RacePlan,
    RaceRequest,
    SuccessRule,
    Technique,
    Timeouts,
)
from toctou.engine.requestfile import credentials_to_header, parse_request_spec
from toctou.errors import PlanError

__all__ = ["load_plan", "plan_from_mapping"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Request(_Model):
    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    count: int = Field(default=1, ge=1, le=10_000)
    offset_ms: float = Field(default=0.0, ge=0, le=60_000)

    def build(self) -> RaceRequest:
        headers = dict(self.headers)
        body = (self.body or "").encode()
        if self.json_body is not None:
            if self.body is not None:
                raise PlanError(f"{self.url}: give body or json, not both")
            body = json.dumps(self.json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        url, pairs = credentials_to_header(self.url, tuple(headers.items()))
        return RaceRequest(
            url=url, method=self.method.upper(), headers=pairs, body=body, offset_ms=self.offset_ms
        )


class _Probe(_Model):
    url: str
    path: str
    unit: float = -1.0
    headers: dict[str, str] = Field(default_factory=dict)


class _Success(_Model):
    statuses: list[int] = Field(default_factory=list)
    body_regex: str | None = None
    json_path: str | None = None
    json_value: str | None = None


class _Oracle(_Model):
    success: _Success = Field(default_factory=_Success)
    expect_max_successes: int | None = Field(default=None, ge=0)
    probe: _Probe | None = None
    reset: str | _Request | None = None
    baseline: bool = False


class _Plan(_Model):
    requests: list[_Request] = Field(min_length=1)
    technique: Technique = "auto"
    rounds: int = Field(default=1, ge=1, le=10_000)
    gate_wait_ms: float = Field(default=100.0, ge=0, le=10_000)
    connections: int | None = Field(default=None, ge=1, le=256)
    timeout: float = Field(default=15.0, gt=0, le=600)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    insecure: bool = False
    budget: int = Field(default=DEFAULT_BUDGET, ge=1)
    max_body_bytes: int = Field(default=65_536, ge=0, le=64 * 2**20)
    oracle: _Oracle = Field(default_factory=_Oracle)


def _probe_request(spec: _Probe) -> RaceRequest:
    url, headers = credentials_to_header(spec.url, tuple(spec.headers.items()))
    return RaceRequest(url=url, headers=headers)


def _oracle(spec: _Oracle) -> Oracle:
    reset = spec.reset
    return Oracle(
        success=SuccessRule(
            statuses=tuple(spec.success.statuses),
            body_regex=spec.success.body_regex,
            json_path=spec.success.json_path,
            json_value=spec.success.json_value,
        ),
        expect_max_successes=spec.expect_max_successes,
        probe=Probe(
            _probe_request(spec.probe),
            spec.probe.path,
            spec.probe.unit,
        )
        if spec.probe
        else None,
        reset=parse_request_spec(reset)
        if isinstance(reset, str)
        else reset.build()
        if reset
        else None,
        baseline=spec.baseline,
    )


def plan_from_mapping(data: dict[str, Any]) -> RacePlan:
    """Validate a parsed config and build the plan; every problem is a :class:`PlanError`."""
    try:
        spec = _Plan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanError(f"race config: {where}: {first['msg']}") from None
    requests = tuple(r for entry in spec.requests for r in (entry.build(),) * entry.count)
    return RacePlan(
        requests=requests,
        technique=spec.technique,
        rounds=spec.rounds,
        gate_wait_ms=spec.gate_wait_ms,
        connections=spec.connections,
        timeouts=Timeouts(connect=spec.connect_timeout, response=spec.timeout),
        insecure=spec.insecure,
        max_body_bytes=spec.max_body_bytes,
        budget=spec.budget,
        oracle=_oracle(spec.oracle),
    )


def load_plan(path: Path, overrides: Mapping[str, Any] | None = None) -> RacePlan:
    """Read ``race.toml``; ``overrides`` (same keys, tables merged key by key) win over the file.

    The overrides are applied before validation, so a raised ``budget`` admits a plan the
    file's default would refuse.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PlanError(f"{path} is not UTF-8 text, as TOML must be") from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path} is not valid TOML: {exc}") from None
    return plan_from_mapping(_merged(data, overrides or {}))


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = _merged(current, value)
        else:
            out[key] = value
    return out
