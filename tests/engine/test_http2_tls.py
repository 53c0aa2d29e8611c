"""Single-packet over TLS and h2c: ALPN, one write for every final frame, sharding at the stream
cap, and HTTP/2 servers that misbehave."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme

from tests.engine.h2server import H2Stats, h2_handler
from tests.engine.hostile import serve, silent
from toctou.engine import Oracle, RacePlan, RaceRequest, Timeouts, run_race
from toctou.lab.process import free_port


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    context.set_alpn_protocols(["h2"])
    return context


def plan(url: str, count: int, technique: str = "single-packet", body: bytes = b"") -> RacePlan:
    method = "POST" if body else "GET"
    return RacePlan.repeat(
        RaceRequest(url, method, body=body),
        count,
        technique=technique,
        insecure=True,
        oracle=Oracle(expect_max_successes=count),
    )


def test_auto_picks_single_packet_by_alpn_each_connection_in_one_read() -> None:
    stats = H2Stats()
    with serve(h2_handler(stats), tls=tls_context()) as port:
        result = run_race(plan(f"https://127.0.0.1:{port}/buy", 20, technique="auto"))
    assert result.technique == "single-packet"
    assert result.protocol == "HTTP/2"
    r = result.rounds[0]
    assert [a.status for a in r.attempts] == [200] * 20
    assert r.arrival_spread is not None
    assert r.arrival_spread.count == 20
    # auto spreads the batch over 4 connections (a multi-process server's workers share it);
    # each connection's 5 END_STREAM frames reached the server in one read: one TLS record.
    assert r.connections == 4
    assert sorted(stats.reads_with_completions) == [5, 5, 5, 5]
    assert result.verdict.outcome == "no_race_observed"


def test_bodies_withhold_their_last_byte() -> None:
    stats = H2Stats()
    with serve(h2_handler(stats), tls=tls_context()) as port:
        result = run_race(plan(f"https://127.0.0.1:{port}/buy", 10, body=b'{"item_id": 1}'))
    assert [a.status for a in result.rounds[0].attempts] == [200] * 10
    assert stats.reads_with_completions == [10]


def test_batches_shard_at_the_servers_stream_limit() -> None:
    stats = H2Stats()
    with serve(h2_handler(stats, max_streams=8), tls=tls_context()) as port:
        result = run_race(plan(f"https://127.0.0.1:{port}/buy", 20))
    r = result.rounds[0]
    assert sorted({a.connection for a in r.attempts}) == [0, 1, 2]  # 8 + 8 + 4
    assert [a.status for a in r.attempts] == [200] * 20
    assert sorted(stats.reads_with_completions) == [4, 8, 8]


def h2_plan(url: str, **options: object) -> RacePlan:
    return RacePlan.repeat(
        RaceRequest(url),
        5,
        technique="single-packet",
        gate_wait_ms=10,
        timeouts=Timeouts(connect=1.5, response=1.5),
        oracle=Oracle(expect_max_successes=1),
        **options,
    )


def test_refused_h2_connection_is_inconclusive() -> None:
    result = run_race(h2_plan(f"http://127.0.0.1:{free_port()}/"))
    assert result.verdict.outcome == "inconclusive"
    assert "cannot connect" in result.verdict.summary


def test_server_that_never_sends_settings_is_inconclusive() -> None:
    with serve(silent) as port:
        started = time.monotonic()
        result = run_race(h2_plan(f"http://127.0.0.1:{port}/"))
    assert time.monotonic() - started < 10
    assert result.verdict.outcome == "inconclusive"
    assert "SETTINGS" in result.verdict.summary


@pytest.mark.parametrize(
    ("mode", "error"),
    [("stall", "timed out"), ("reset", "stream reset by the server")],
)
def test_streams_that_never_complete_are_errors(mode: str, error: str) -> None:
    with serve(h2_handler(H2Stats(), mode=mode)) as port:
        result = run_race(h2_plan(f"http://127.0.0.1:{port}/"))
    attempts = result.rounds[0].attempts
    assert len(attempts) == 5
    assert all(a.error and error in a.error for a in attempts), [a.error for a in attempts]
    assert result.verdict.outcome == "inconclusive"


def test_huge_h2_body_is_capped_and_the_stream_reset() -> None:
    with serve(h2_handler(H2Stats(), mode="huge")) as port:
        result = run_race(h2_plan(f"http://127.0.0.1:{port}/", max_body_bytes=1000))
    for attempt in result.rounds[0].attempts:
        assert attempt.body_truncated
        assert len(attempt.body) == 1000


def test_endless_header_block_is_an_error_not_a_memory_sink() -> None:
    """The CONTINUATION flood: the client stops at h2's bound (64 frames), long before the
    response timeout, and never buffers the 16 MB the server would send."""
    started = time.perf_counter()
    with serve(h2_handler(H2Stats(), mode="continuation")) as port:
        result = run_race(h2_plan(f"http://127.0.0.1:{port}/"))
    assert time.perf_counter() - started < 1.5  # the response timeout
    attempts = result.rounds[0].attempts
    assert all(a.error and "HTTP/2 protocol error" in a.error for a in attempts), [
        a.error for a in attempts
    ]
    assert result.verdict.outcome == "inconclusive"
