"""Session results for the report tests (tests/report/results.py makes them)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.report import results
from toctou.engine import RaceResult, run_race
from toctou.lab.process import LabProcess
from toctou.matrix.result import MatrixResult


@pytest.fixture(scope="session")
def vulnerable_race(sqlite_lab: LabProcess) -> RaceResult:
    result = results.race_inventory(sqlite_lab, "vulnerable", rounds=2)
    assert result.verdict.outcome == "race", result.verdict
    return result


@pytest.fixture(scope="session")
def atomic_race(sqlite_lab: LabProcess) -> RaceResult:
    result = results.race_inventory(sqlite_lab, "atomic", rounds=2)
    assert result.verdict.outcome == "no_race_observed", result.verdict
    return result


@pytest.fixture(scope="session")
def hostile_race() -> RaceResult:
    return results.race_hostile()


@pytest.fixture(scope="session")
def matrix(sqlite_lab: LabProcess, hostile_race: RaceResult) -> MatrixResult:
    return results.build_matrix(sqlite_lab, hostile_race)


@pytest.fixture(scope="session")
def baseline_race(atomic_race: RaceResult, sqlite_lab: LabProcess) -> RaceResult:
    """The atomic race once more, after its requests were sent one by one."""
    plan = atomic_race.plan
    return run_race(replace(plan, rounds=1, oracle=replace(plan.oracle, baseline=True)))
