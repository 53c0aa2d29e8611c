"""JUnit XML for CI: one test case per round and one for the verdict."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from toctou.engine.result import RaceResult, RoundResult

__all__ = ["junit_xml", "write_junit"]


def _round_case(suite: ET.Element, target: str, r: RoundResult) -> tuple[int, int]:
    case = ET.SubElement(suite, "testcase", classname=target, name=f"round {r.index + 1}")
    if r.violations:
        failure = ET.SubElement(case, "failure", message=r.violations[0], type="race")
        failure.text = "\n".join(r.violations)
        return 1, 0
    if not r.judged:
        reason = r.reset_error or r.probe_error or r.batch_error or f"{r.errors} requests failed"
        ET.SubElement(case, "error", message=reason, type="inconclusive")
        return 0, 1
    return 0, 0


def junit_xml(result: RaceResult) -> str:
    target = result.plan.requests[0].url
    suite = ET.Element("testsuite", name="toctou race", time=f"{result.duration_s:.3f}")
    failures = errors = 0
    for r in result.rounds:
        failed, errored = _round_case(suite, target, r)
        failures, errors = failures + failed, errors + errored
    verdict = ET.SubElement(suite, "testcase", classname=target, name="verdict")
    if result.verdict.outcome == "race":
        failure = ET.SubElement(verdict, "failure", message=result.verdict.summary, type="race")
        failure.text = "\n".join(result.verdict.evidence)
        failures += 1
    elif result.verdict.outcome == "inconclusive":
        ET.SubElement(verdict, "error", message=result.verdict.summary, type="inconclusive")
        errors += 1
    suite.set("tests", str(len(result.rounds) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def write_junit(result: RaceResult, path: Path) -> None:
    path.write_text(junit_xml(result), encoding="utf-8")
