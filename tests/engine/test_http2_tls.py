"""Single-packet over TLS: ALPN h2, every final frame in one write, sharding at the stream cap."""

from __future__ import annotations

import ssl

import trustme

from tests.engine.h2server import H2Stats, h2_handler
from tests.engine.hostile import serve
from toctou.engine import Oracle, RacePlan, RaceRequest, run_race


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


def test_auto_picks_single_packet_by_alpn_and_lands_in_one_read() -> None:
    stats = H2Stats()
    with serve(h2_handler(stats), tls=tls_context()) as port:
        result = run_race(plan(f"https://127.0.0.1:{port}/buy", 20, technique="auto"))
    assert result.technique == "single-packet"
    assert result.protocol == "HTTP/2"
    r = result.rounds[0]
    assert [a.status for a in r.attempts] == [200] * 20
    assert r.arrival_spread is not None
    assert r.arrival_spread.count == 20
    # All 20 END_STREAM frames reached the server in one read: one TLS record, one segment.
    assert stats.reads_with_completions == [20]
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
