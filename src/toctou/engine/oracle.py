"""Verdicts from invariants: success counts, state probes, and a sequential baseline."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from toctou.engine.jsonpath import json_value
from toctou.engine.plan import Oracle, SuccessRule
from toctou.engine.result import Attempt, RoundResult, Verdict

__all__ = [
    "detection_bound",
    "is_success",
    "round_violations",
    "verdict",
]

CONFIDENCE = 0.95
_EVIDENCE_LINES = 12


def is_success(attempt: Attempt, rule: SuccessRule) -> bool:
    if attempt.status is None or (attempt.error and not attempt.body_truncated):
        return False
    if rule.statuses:
        if attempt.status not in rule.statuses:
            return False
    elif not 200 <= attempt.status < 300:
        return False
    if rule.body_regex is not None and not re.search(rule.body_regex, attempt.body):
        return False
    if rule.json_path is not None:
        try:
            value = json_value(attempt.body, rule.json_path)
        except LookupError:
            return False
        if rule.json_value is not None and _text(value) != rule.json_value:
            return False
    return True


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def round_violations(
    oracle: Oracle,
    successes: int,
    probe_before: float | None,
    probe_after: float | None,
    baseline: RoundResult | None,
) -> tuple[str, ...]:
    """Every invariant the round broke, each as a sentence with its numbers."""
    found = []
    if oracle.expect_max_successes is not None and successes > oracle.expect_max_successes:
        found.append(f"{successes} successes, at most {oracle.expect_max_successes} expected")
    if oracle.probe is not None and probe_before is not None and probe_after is not None:
        change = probe_after - probe_before
        expected = successes * oracle.probe.unit
        if oracle.probe.unit == 0 and change:
            found.append(
                f"probed value went {probe_before:g} -> {probe_after:g} (change {change:+g}), "
                "but it must not change at all"
            )
        elif not math.isclose(change, expected, abs_tol=1e-9):
            found.append(
                f"probed value went {probe_before:g} -> {probe_after:g} (change {change:+g}), "
                f"but {successes} successes x {oracle.probe.unit:+g} = {expected:+g}: "
                + ("a lost update" if abs(change) < abs(expected) else "a change nobody reported")
            )
    if baseline is not None and baseline.judged and successes > baseline.successes:
        found.append(
            f"{successes} successes in parallel, {baseline.successes} when sent one by one"
        )
    return tuple(found)


def detection_bound(rounds: int, confidence: float = CONFIDENCE) -> float:
    """Largest per-round detection probability still consistent with ``rounds`` clean rounds."""
    return float(1 - (1 - confidence) ** (1 / rounds))


def verdict(oracle: Oracle, rounds: Sequence[RoundResult], baseline: RoundResult | None) -> Verdict:
    racy = [r for r in rounds if r.violations]
    n = len(rounds)
    if racy:
        evidence = [f"round {r.index + 1}: {v}" for r in racy for v in r.violations]
        return Verdict(
            "race",
            f"RACE: invariants broken in {len(racy)} of {n} round(s)",
            tuple(evidence[:_EVIDENCE_LINES]),
            n,
            len(racy),
        )
    if not oracle.judges:
        return Verdict(
            "inconclusive",
            "INCONCLUSIVE: nothing to judge by; give --expect-max-successes, --probe or "
            "--baseline (expect_max_successes, probe or baseline in race.toml or the API)",
            rounds_run=n,
        )
    problems = _problems(rounds, baseline)
    if problems:
        return Verdict("inconclusive", "INCONCLUSIVE: " + problems[0], tuple(problems), n)
    # A round in which nothing succeeded never ran the code under test (a wrong path, body or
    # token, a reset that left nothing to take) and could not have shown a race, unless zero
    # successes is what the oracle expects. Such rounds do not count toward the bound.
    idle = [] if oracle.expect_max_successes == 0 else [r for r in rounds if not r.successes]
    if len(idle) == n:
        return Verdict(
            "inconclusive",
            f"INCONCLUSIVE: no request succeeded in any of {n} round(s) (answers: "
            f"{_answers(rounds)}), so the race was never exercised; check the URL, body, "
            "credentials, reset and success rule",
            rounds_run=n,
        )
    judged = n - len(idle)
    bound = detection_bound(judged)
    skipped = f" ({len(idle)} more had no success and are not counted)" if idle else ""
    return Verdict(
        "no_race_observed",
        f"NO RACE OBSERVED in {judged} round(s){skipped}: a race showing in more than "
        f"{bound:.0%} of rounds would have been seen ({CONFIDENCE:.0%} confidence)",
        tuple(f"round {r.index + 1}: no success ({_answers([r])})" for r in idle)[:_EVIDENCE_LINES],
        rounds_run=n,
        detection_bound=bound,
    )


def _answers(rounds: Sequence[RoundResult]) -> str:
    """The answers the requests of ``rounds`` got, most common first: ``404 x 20, 409 x 1``."""
    counts = Counter(
        str(a.status) if a.status is not None else "no answer" for r in rounds for a in r.attempts
    )
    return ", ".join(f"{what} x {count}" for what, count in counts.most_common(4)) or "none"


def _problems(rounds: Sequence[RoundResult], baseline: RoundResult | None) -> list[str]:
    problems = []
    if baseline is not None and not baseline.judged:
        problems.append(f"the sequential baseline failed: {_why(baseline)}")
    for r in rounds:
        if not r.judged:
            problems.append(f"round {r.index + 1}: {_why(r)}")
    return problems[:_EVIDENCE_LINES]


def _why(r: RoundResult) -> str:
    if r.reset_error:
        return f"reset failed ({r.reset_error})"
    if r.probe_error:
        return f"probe failed ({r.probe_error})"
    if r.batch_error:
        return r.batch_error
    first = next((a.error for a in r.attempts if a.error), "")
    return f"{r.errors} of {len(r.attempts)} requests failed (first: {first})"
