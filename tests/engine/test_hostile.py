"""Hostile targets: the engine records per-request errors, keeps its timeouts and memory bounds,
and says INCONCLUSIVE where it cannot judge."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme

from tests.engine.hostile import (
    Handler,
    counter_app,
    endless_headers,
    garbage,
    huge_body,
    reset_mid_response,
    serve,
    silent,
    trickle,
)
from toctou.engine import Oracle, Probe, RacePlan, RaceRequest, Timeouts, run_race
from toctou.lab.process import free_port

TECHNIQUES = ["naive", "seed-style", "last-byte"]


def plan_for(url: str, technique: str, **options: object) -> RacePlan:
    return RacePlan.repeat(
        RaceRequest(url),
        5,
        technique=technique,
        gate_wait_ms=10,
        timeouts=Timeouts(connect=2, response=1.5),
        oracle=Oracle(expect_max_successes=1),
        **options,
    )


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_refused_connection_is_inconclusive(technique: str) -> None:
    result = run_race(plan_for(f"http://127.0.0.1:{free_port()}/", technique))
    assert result.verdict.outcome == "inconclusive"
    assert all("cannot connect" in (a.error or "") for a in result.rounds[0].attempts)
    assert result.exit_code == 3


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        pytest.param(garbage, "not an HTTP/1.1 response", id="garbage"),
        pytest.param(reset_mid_response, "connection", id="reset-mid-response"),
        pytest.param(trickle, "timed out", id="trickle"),
        pytest.param(silent, "timed out", id="silent"),
        pytest.param(endless_headers, "not an HTTP/1.1 response", id="endless-headers"),
    ],
)
@pytest.mark.parametrize("technique", TECHNIQUES)
def test_misbehaving_server_gives_errors_not_a_verdict(
    technique: str, handler: Handler, error: str
) -> None:
    with serve(handler) as port:
        started = time.monotonic()
        result = run_race(plan_for(f"http://127.0.0.1:{port}/", technique))
        elapsed = time.monotonic() - started
    attempts = result.rounds[0].attempts
    assert len(attempts) == 5
    assert all(a.error and error in a.error for a in attempts), [a.error for a in attempts]
    assert result.verdict.outcome == "inconclusive"
    assert elapsed < 10  # the 1.5 s response timeout holds even against a trickle


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_huge_body_is_capped(technique: str) -> None:
    with serve(huge_body) as port:
        result = run_race(plan_for(f"http://127.0.0.1:{port}/", technique, max_body_bytes=1000))
    for attempt in result.rounds[0].attempts:
        assert attempt.body_truncated
        assert len(attempt.body) == 1000
        assert attempt.body_size > 1000


@pytest.fixture(scope="module")
def certificate() -> tuple[trustme.CA, ssl.SSLContext]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return ca, context


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_untrusted_certificate_fails_without_insecure(
    certificate: tuple[trustme.CA, ssl.SSLContext], technique: str
) -> None:
    handle, _ = counter_app()
    with serve(handle, tls=certificate[1]) as port:
        result = run_race(plan_for(f"https://127.0.0.1:{port}/", technique))
    assert all("TLS handshake" in (a.error or "") for a in result.rounds[0].attempts)
    assert result.verdict.outcome == "inconclusive"


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_insecure_accepts_a_self_signed_certificate_and_finds_the_race(
    certificate: tuple[trustme.CA, ssl.SSLContext], technique: str
) -> None:
    handle, state = counter_app()
    with serve(handle, tls=certificate[1]) as port:
        url = f"https://127.0.0.1:{port}/"
        plan = RacePlan.repeat(
            RaceRequest(url, "POST"),
            10,
            technique=technique,
            insecure=True,
            oracle=Oracle(probe=Probe(RaceRequest(url), "$.n", unit=1)),
        )
        result = run_race(plan)
    assert result.rounds[0].successes == 10
    assert state[0] < 10  # the counter lost updates
    assert result.verdict.outcome == "race"
    assert "lost update" in result.verdict.evidence[0]


def test_single_packet_against_an_http1_only_server_says_so() -> None:
    handle, _ = counter_app()
    with serve(handle) as port:
        refused = run_race(plan_for(f"http://127.0.0.1:{port}/", "single-packet"))
        assert refused.verdict.outcome == "inconclusive"
        assert "HTTP/2" in refused.verdict.summary
        # auto notices and falls back to last-byte
        result = run_race(plan_for(f"http://127.0.0.1:{port}/", "auto"))
    assert result.technique == "last-byte"
