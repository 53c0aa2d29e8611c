"""Plans validate their input, count their requests against the budget, and results round-trip."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from toctou.engine import Oracle, Probe, RacePlan, RaceRequest, SuccessRule
from toctou.engine.config import load_plan, plan_from_mapping
from toctou.engine.requestfile import parse_raw_request, parse_request_spec
from toctou.engine.result import Attempt, RaceResult, RoundResult, Verdict
from toctou.errors import PlanError

URL = "http://127.0.0.1:9/buy"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RaceRequest("ftp://x/"), "not an http"),
        (lambda: RaceRequest("http:///nohost"), "not an http"),
        (lambda: RaceRequest(URL, "get me"), "not an HTTP method"),
        (lambda: RaceRequest(URL, offset_ms=-1), "offset_ms"),
        (lambda: RacePlan(requests=()), "at least one request"),
        (lambda: RacePlan.repeat(RaceRequest(URL), 0), "count"),
        (lambda: RacePlan.repeat(RaceRequest(URL), 5, rounds=0), "rounds"),
        (lambda: RacePlan.repeat(RaceRequest(URL), 5, technique="turbo"), "unknown technique"),
        (lambda: RacePlan.repeat(RaceRequest(URL), 5, oracle=Oracle(baseline=True)), "reset"),
        (lambda: SuccessRule(json_path="$..[?("), "not a JSON path"),
        (lambda: SuccessRule(body_regex="("), "not a regular expression"),
        (lambda: Probe(RaceRequest(URL), "$.stock", unit=float("nan")), "finite number"),
        (lambda: SuccessRule(statuses=(200, 99)), "not an HTTP status: 99"),
        (
            lambda: RacePlan(
                requests=(RaceRequest(URL), RaceRequest(URL, offset_ms=5)),
                technique="single-packet",
            ),
            "send offsets need last-byte",
        ),
        (lambda: RaceRequest("http://u:p@127.0.0.1/"), "credentials in a URL"),
        (lambda: RaceRequest("http://127.0.0.1:99999/"), "not a valid URL"),
        (lambda: RaceRequest(URL, headers=(("X-A", "b\nc"),)), "Illegal header value"),
        (lambda: RaceRequest(URL, headers=(("Zoë", "1"),)), "header names are ASCII"),
        (lambda: RaceRequest(URL, "POST", (("Content-Length", "9"),), b"ab"), "does not match"),
    ],
)
def test_invalid_plans_are_refused(make: object, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        make()  # type: ignore[operator]


def test_budget_counts_every_request_and_refuses_floods() -> None:
    oracle = Oracle(
        reset=RaceRequest(URL, "POST"), probe=Probe(RaceRequest(URL), "$.n"), baseline=True
    )
    plan = RacePlan.repeat(RaceRequest(URL), 20, rounds=10, oracle=oracle)
    assert plan.planned_requests() == (20 + 1 + 2) * 10 + (20 + 1 + 2)
    with pytest.raises(PlanError, match="over the budget of 2000"):
        RacePlan.repeat(RaceRequest(URL), 100, rounds=21)
    assert RacePlan.repeat(RaceRequest(URL), 100, rounds=21, budget=2100).rounds == 21


def _result(headers: tuple[tuple[str, str], ...]) -> RaceResult:
    oracle = Oracle(
        expect_max_successes=1,
        reset=RaceRequest(URL, "POST", headers),
        probe=Probe(RaceRequest(URL, headers=headers), "$.stock"),
    )
    plan = RacePlan.repeat(RaceRequest(URL, "POST", headers, b"\x00\xffbinary"), 2, oracle=oracle)
    attempt = Attempt(0, 0, "HTTP/1.1", 201, (("Set-Cookie", "s=1"), ("X", "y")), "{}", 2)
    round_ = RoundResult(0, (attempt, attempt), 2, 0, violations=("2 successes",))
    return RaceResult(plan, "last-byte", "HTTP/1.1", (round_,), Verdict("race", "RACE", ("e",)))


def test_result_round_trips_through_json() -> None:
    result = _result((("Authorization", "Bearer t"),))
    again = RaceResult.from_json(result.to_json())
    assert again == result
    assert again.plan.requests[0].body == b"\x00\xffbinary"
    assert again.exit_code == 1


def test_redaction_masks_credentials_everywhere() -> None:
    result = _result((("Authorization", "Bearer t"), ("Cookie", "c=1"), ("Accept", "*/*")))
    text = result.redacted().to_json()
    assert "Bearer t" not in text
    assert "c=1" not in text
    assert "s=1" not in text
    # 2 credentials x (2 requests + reset + probe) + Set-Cookie in 2 attempts
    assert "*/*" in text
    assert text.count("[redacted]") == 10


def test_redaction_masks_secrets_a_body_repeats() -> None:
    headers = (("Authorization", "Bearer tok/12+3456"), ("Cookie", "sid=abcdef99; theme=dark"))
    result = _result(headers)
    echo = Attempt(
        1, 1, "HTTP/1.1", 200,
        (("Set-Cookie", "next=zz9y8x7w; Path=/; HttpOnly"), ("X-Echo", "Bearer tok/12+3456")),
        '{"you": "Bearer tok\\/12+3456", "sid": "abcdef99", "next": "zz9y8x7w",'
        ' "theme": "dark", "link": "/a?t=tok%2F12%2B3456"}',
    )  # fmt: skip
    result = replace(result, rounds=(replace(result.rounds[0], attempts=(echo,)),))
    masked = result.redacted().rounds[0].attempts[0]
    assert json.loads(masked.body) == {
        "you": "[redacted]", "sid": "[redacted]", "next": "[redacted]", "theme": "dark",
        "link": "/a?t=[redacted]",
    }  # fmt: skip  # "dark" is too short to be a credential; Path and HttpOnly are attributes
    assert dict(masked.headers)["X-Echo"] == "[redacted]"
    assert result.rounds[0].attempts[0].body == echo.body  # the original is untouched


def test_raw_request_file_is_parsed_with_h11() -> None:
    raw = (
        b"POST /inventory/atomic/purchase?x=1 HTTP/1.1\n"
        b"Host: shop.test:8000\n"
        b"Cookie: session=abc\n"
        b"Content-Length: 999\n"
        b"\n"
        b'{"item_id": 1}'
    )
    request = parse_raw_request(raw)
    assert request.url == "http://shop.test:8000/inventory/atomic/purchase?x=1"
    assert request.method == "POST"
    assert request.body == b'{"item_id": 1}'
    assert ("Cookie", "session=abc") in request.headers
    assert request.header("content-length") is None  # recomputed when sent
    moved = parse_raw_request(raw, base_url="https://127.0.0.1:8443")
    assert moved.url == "https://127.0.0.1:8443/inventory/atomic/purchase?x=1"
    hostless = parse_raw_request(b"GET /a HTTP/1.1\n\n", base_url="http://127.0.0.1:1")
    assert hostless.url == "http://127.0.0.1:1/a"


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        # CRLF inside the body is kept; the line end after it, which Content-Length does not
        # count, is an editor's and goes
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\na\r\nb\r\n\r\n", b"a\r\nb\r\n"),
        (b"POST / HTTP/1.1\nHost: h\nContent-Length: 3\n\na=1\n", b"a=1"),
        (b"GET / HTTP/1.1\nHost: h\n\n\n", b""),  # nothing but a line end: no body
        (b"POST / HTTP/1.1\nHost: h\n\n{}\n", b"{}\n"),  # no Content-Length: as written
        (b"POST / HTTP/1.1\nHost: h\nContent-Length: 2\n\nabcd", b"abcd"),  # edited body
    ],
)
def test_request_file_bodies_keep_their_bytes(raw: bytes, body: bytes) -> None:
    assert parse_raw_request(raw).body == body


def test_http2_copies_and_absolute_targets() -> None:
    line = parse_raw_request(b"POST /buy HTTP/2\nHost: shop.test\n\nx=1")
    assert (line.method, line.url, line.body) == ("POST", "http://shop.test/buy", b"x=1")
    chrome = parse_raw_request(
        b":method: PUT\n:authority: shop.test\n:scheme: https\n:path: /a?b=1\naccept: */*\n\n"
    )
    assert (chrome.method, chrome.url) == ("PUT", "https://shop.test/a?b=1")
    assert ("Host", "shop.test") in chrome.headers
    absolute = b"GET http://elsewhere.test/p?q=1 HTTP/1.1\nHost: shop.test\n\n"
    assert parse_raw_request(absolute).url == "http://elsewhere.test/p?q=1"
    moved = parse_raw_request(absolute, base_url="http://127.0.0.1:9")
    assert moved.url == "http://127.0.0.1:9/p?q=1"  # the URL given wins over the file's
    assert moved.header("host") == "shop.test"  # and the Host header is sent as written


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"NOT A REQUEST LINE\n\n", "not an HTTP request .first line .NOT A REQUEST LINE"),
        (b"GET / HTTP/1.1\n\n", "Host"),
    ],
)
def test_bad_request_files_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_raw_request(raw)


def test_request_spec() -> None:
    reset = parse_request_spec('POST http://h/lab/reset {"item_id": 1, "stock": 1}')
    assert (reset.method, reset.url, reset.body) == (
        "POST",
        "http://h/lab/reset",
        b'{"item_id": 1, "stock": 1}',
    )
    assert reset.header("content-type") == "application/json"
    assert parse_request_spec("http://h/items/1").method == "GET"


def test_config_file_builds_a_multi_request_plan(tmp_path: Path) -> None:
    config = tmp_path / "race.toml"
    config.write_text(
        """
technique = "last-byte"
rounds = 3

[[requests]]
url = "http://127.0.0.1:8000/checkout"
method = "post"
json = { cart = 1 }

[[requests]]
url = "http://127.0.0.1:8000/cart"
method = "POST"
body = "item=jacket"
headers = { "Content-Type" = "application/x-www-form-urlencoded" }
count = 4
offset_ms = 2.5

[oracle]
expect_max_successes = 1
reset = 'POST http://127.0.0.1:8000/lab/reset {"item_id": 1}'
probe = { url = "http://127.0.0.1:8000/items/1", path = "$.stock", unit = -1 }
success = { statuses = [201] }
"""
    )
    plan = load_plan(config)
    assert len(plan.requests) == 5
    assert plan.requests[0].method == "POST"
    assert plan.requests[0].body == b'{"cart": 1}'
    assert [r.offset_ms for r in plan.requests] == [0, 2.5, 2.5, 2.5, 2.5]
    assert plan.oracle.success.statuses == (201,)
    assert plan.oracle.probe is not None
    assert plan.oracle.probe.json_path == "$.stock"
    assert plan.technique == "last-byte"
    assert plan.rounds == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "requests"),
        ({"requests": [{"url": "http://h/", "count": 0}]}, "count"),
        ({"requests": [{"url": "http://h/"}], "technique": "fast"}, "technique"),
        ({"requests": [{"url": "http://h/"}], "colour": "red"}, "colour"),
        ({"requests": [{"url": "http://h/", "json": {}, "body": "x"}]}, "not both"),
        ({"requests": [{"url": "http://h/", "count": 5000}], "rounds": 1}, "budget"),
    ],
)
def test_bad_config_is_a_plan_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan_from_mapping(data)


def test_unreadable_config_is_a_plan_error(tmp_path: Path) -> None:
    bad = tmp_path / "race.toml"
    bad.write_text("technique = ")
    with pytest.raises(PlanError, match="not valid TOML"):
        load_plan(bad)
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(tmp_path / "missing.toml")
