"""Verdicts from invariants: success counts, state probes, and a sequential baseline."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from toctou.engine.jsonpath import json_value
from toctou.engine.plan import Oracle, RaceRequest, SuccessRule
from toctou.engine.result import Attempt, RoundResult, Verdict

__all__ = [
    "SuccessShapes",
    "blind_spots",
    "detection_bound",
    "is_success",
    "learn_unit",
    "round_violations",
    "success_shapes",
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
                + (
                    ""
                    if baseline is not None
                    else f" (unless a success changes it by other than {oracle.probe.unit:+g}: "
                    "--baseline learns the unit from requests sent one by one)"
                )
            )
    if baseline is not None and baseline.judged and successes > baseline.successes:
        found.append(
            f"{successes} successes in parallel, {baseline.successes} when sent one by one"
        )
    return tuple(found)


def learn_unit(oracle: Oracle, baseline: RoundResult | None) -> tuple[Oracle, str | None]:
    """The oracle to judge the rounds by, its probe's unit checked against the sequential
    baseline (one request at a time: each success changed the state by exactly one unit), and a
    note saying what was learned, or why the unit could not be checked."""
    probe = oracle.probe
    if probe is None or probe.unit == 0:  # no probe, or "must not change": nothing to learn
        return oracle, None
    given = f"{probe.unit:+g} per success"
    if baseline is None:
        return oracle, f"probe unit {given} assumed, not checked (--baseline learns it)"
    before, after = baseline.probe_before, baseline.probe_after
    if not baseline.judged or before is None or after is None or not baseline.successes:
        return oracle, f"probe unit {given} not checked: the sequential baseline had no success"
    learned = (after - before) / baseline.successes
    if math.isclose(learned, probe.unit, abs_tol=1e-9):
        return oracle, f"probe unit {given}, as the sequential baseline showed"
    return replace(oracle, probe=replace(probe, unit=learned)), (
        f"probe unit {learned:+g} per success, learned from the sequential baseline "
        f"({before:g} -> {after:g} with {baseline.successes} successes), not the given "
        f"{probe.unit:+g}: the rounds were judged with {learned:+g}"
    )


# A 2xx body says what kind of answer it is in one of these fields ({"status": "fail"}): the
# seed's API refuses a sale with 200 and such a body.
_KIND_KEYS = ("status", "result", "outcome", "success", "ok", "state")
_SUCCESS_WORDS = frozenset(
    {"success", "succeeded", "successful", "ok", "true", "purchased", "created", "completed",
     "done", "approved", "accepted", "paid", "redeemed", "confirmed"}
)  # fmt: skip
_FAILURE_WORDS = frozenset(
    {"fail", "failed", "failure", "false", "error", "rejected", "denied", "refused", "declined",
     "invalid", "out_of_stock", "sold_out", "insufficient_funds", "conflict", "busy", "taken"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SuccessShapes:
    """What the 2xx answers of a run say about the default success rule ("any 2xx")."""

    rule: SuccessRule | None = None
    """A rule picked because the answers left no doubt (one success word, the rest failures)."""
    note: str | None = None
    ambiguity: str | None = None
    """The 2xx answers of one request fall into shapes that cannot be told apart: name them."""


def _kind(attempt: Attempt) -> tuple[str, str] | None:
    try:
        data = json.loads(attempt.body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for key in _KIND_KEYS:
        value = data.get(key)
        if isinstance(value, str | bool | int):
            return key, _text(value)
    return None


def _groups(kinds: Counter[tuple[str, str] | None]) -> str:
    return ", ".join(
        f"{n} x " + ("no status field" if kind is None else f"{kind[0]}={kind[1]}")
        for kind, n in kinds.most_common()
    )


def success_shapes(
    oracle: Oracle,
    requests: Sequence[RaceRequest],
    rounds: Sequence[RoundResult],
    baseline: RoundResult | None,
) -> SuccessShapes:
    """Under the default rule, whether the 2xx answers of each request agree on what they are.

    Answers to one request (its copies in every round: a multi-request race's other requests
    may well answer otherwise) that name different kinds (status=success
    and status=fail) are not all successes: where exactly one kind is a success word and every
    other a failure word, that one is the rule (said in the note); else the verdict must ask."""
    rule = oracle.success
    if rule.statuses or rule.body_regex is not None or rule.json_path is not None:
        return SuccessShapes()
    by_request: dict[RaceRequest | int, Counter[tuple[str, str] | None]] = {}
    for r in (*rounds, *((baseline,) if baseline else ())):
        for a in r.attempts:
            if a.status is not None and 200 <= a.status < 300:
                request = requests[a.index] if 0 <= a.index < len(requests) else a.index
                by_request.setdefault(request, Counter())[_kind(a)] += 1
    picked: set[tuple[str, str]] = set()
    for kinds in by_request.values():
        if len(kinds) < 2:
            continue
        keys = {kind[0] for kind in kinds if kind is not None}
        words = {kind[1].lower() for kind in kinds if kind is not None}
        wins = words & _SUCCESS_WORDS
        if None in kinds or len(keys) > 1 or len(wins) != 1 or words - wins - _FAILURE_WORDS:
            return SuccessShapes(ambiguity=_groups(kinds))
        (key,) = keys
        value = next(k[1] for k in kinds if k is not None and k[1].lower() in wins)
        picked.add((key, value))
    if not picked:
        return SuccessShapes()
    if len(picked) > 1:
        return SuccessShapes(ambiguity="; ".join(f"{k}={v}" for k, v in sorted(picked)))
    ((key, value),) = picked
    counts = Counter(k for c in by_request.values() for k, n in c.items() for _ in range(n))
    return SuccessShapes(
        rule=SuccessRule(json_path=f"$.{key}", json_value=value),
        note=f"the 2xx answers fall into shapes ({_groups(counts)}): only {key}={value} was "
        f"counted as a success (--success-json-path '$.{key}' --success-json-value {value}); "
        "give a success rule to decide otherwise",
    )


def blind_spots(oracle: Oracle) -> tuple[str, ...]:
    """What the oracle cannot see, said aloud in every result."""
    found = []
    if oracle.probe is None:
        found.append(
            "no state probe (--probe, --probe-path): a lost update that leaves the success "
            "count right (stock 5, two buyers of 2, stock 3) is invisible to this verdict"
        )
    if oracle.expect_max_successes is None and not oracle.baseline:
        found.append(
            "no success limit (--expect-max-successes) or --baseline: extra successes are "
            "seen only through the probed state"
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
