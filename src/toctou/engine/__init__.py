"""The race engine: synchronised bursts, per-request timings and invariant verdicts.

Imports no web framework, no Rich and no pytest: it produces data that others render.
"""

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
from toctou.engine.requestfile import parse_raw_request, parse_request_spec
from toctou.engine.result import Attempt, RaceResult, RoundResult, Verdict
from toctou.engine.runner import arun_race, choose_technique, run_race

__all__ = [
    "DEFAULT_BUDGET",
    "Attempt",
    "Oracle",
    "Probe",
    "RacePlan",
    "RaceRequest",
    "RaceResult",
    "RoundResult",
    "SuccessRule",
    "Technique",
    "Timeouts",
    "Verdict",
    "arun_race",
    "choose_technique",
    "parse_raw_request",
    "parse_request_spec",
    "run_race",
]
