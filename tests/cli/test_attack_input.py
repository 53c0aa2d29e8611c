"""``toctou attack`` builds the request a user meant: curl's -d/--json rules, raw request files as
browsers and proxies copy them, race.toml with command-line overrides, credentials kept out of
reports, and bad input refused before anything is sent."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import new_item_id
from tests.engine.hostile import Seen, echo_app, serve
from toctou.cli import app
from toctou.engine import RaceResult
from toctou.lab.process import LabProcess, free_port

runner = CliRunner()


@pytest.fixture
def echo() -> Iterator[tuple[str, list[Seen]]]:
    handle, seen = echo_app()
    with serve(handle) as port:
        yield f"http://127.0.0.1:{port}", seen


def flat(output: str) -> str:
    """Output with Rich's error panel unwrapped: borders gone, lines joined."""
    return " ".join(output.replace("│", " ").split())


def buy(lab: LabProcess, strategy: str, item: int, *extra: str) -> list[str]:
    """``toctou attack`` on a lab purchase route: 5 requests for ``item``, then ``extra``."""
    url = f"{lab.base_url}/inventory/{strategy}/purchase"
    return ["attack", url, "--json", json.dumps({"item_id": item}), "-n", "5", *extra]


def run(*args: str) -> tuple[int, str]:
    options = ["-n", "2", "--expect-max-successes", "2", "--technique", "last-byte"]
    result = runner.invoke(app, ["attack", *args, *options])
    return result.exit_code, result.output


def test_data_is_sent_as_curl_sends_it(echo: tuple[str, list[Seen]], tmp_path: Path) -> None:
    url, seen = echo
    form = tmp_path / "form.txt"
    form.write_bytes(b"c=3\r\n&d=4\n")
    assert run(url + "/f", "-d", "a=1", "-d", "b=2", "-d", f"@{form}")[0] == 0
    assert {(s.method, s.body) for s in seen} == {("POST", b"a=1&b=2&c=3&d=4")}
    assert seen[0].headers["Content-Type"] == "application/x-www-form-urlencoded"

    seen.clear()
    assert run(url + "/f", "--data-binary", f"@{form}")[0] == 0
    assert {s.body for s in seen} == {b"c=3\r\n&d=4\n"}  # byte for byte

    seen.clear()
    assert run(url + "/f", "-d", "")[0] == 0  # an empty -d is still a POST, as with curl
    assert {(s.method, s.headers.get("Content-Length")) for s in seen} == {("POST", "0")}

    seen.clear()
    assert run(url + "/j", "--json", '{"a": 1}', "-X", "put")[0] == 0
    assert {(s.method, s.body, s.headers["Content-Type"]) for s in seen} == {
        ("PUT", b'{"a": 1}', "application/json")
    }


def test_url_credentials_become_basic_auth_and_stay_out_of_reports(
    echo: tuple[str, list[Seen]], tmp_path: Path
) -> None:
    url, seen = echo
    out = tmp_path / "race.json"
    with_user = url.replace("http://", "http://ann:s%40cret@")
    code, output = run(with_user + "/buy", "-X", "POST", "--out", str(out))
    assert code == 0, output
    expected = "Basic " + base64.b64encode(b"ann:s@cret").decode()
    assert {s.headers["Authorization"] for s in seen} == {expected}
    report = out.read_text()
    assert "s@cret" not in report
    assert "s%40cret" not in report
    assert base64.b64encode(b"ann:s@cret").decode() not in report


def test_reset_and_probe_on_the_same_host_carry_the_session(
    echo: tuple[str, list[Seen]],
) -> None:
    url, seen = echo
    code, output = run(
        url + "/buy", "-X", "POST", "-H", "Authorization: Bearer t0ken", "-H", "Cookie: s=1",
        "-H", "X-Other: no", "--reset", f"POST {url}/reset", "--probe", f"{url}/state",
        "--probe-path", "$.n", "--probe-unit", "1",
    )  # fmt: skip
    assert code == 1, output  # 2 successes, the probed n never moves: a change nobody made
    aux = [s for s in seen if s.target in ("/reset", "/state")]
    assert len(aux) == 3  # reset, probe before, probe after
    for s in aux:
        assert s.headers["Authorization"] == "Bearer t0ken"
        assert s.headers["Cookie"] == "s=1"
        assert "X-Other" not in s.headers


def test_a_copied_request_is_sent_as_it_was(echo: tuple[str, list[Seen]], tmp_path: Path) -> None:
    url, seen = echo
    body = b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n"
    raw = tmp_path / "req.http"
    raw.write_bytes(
        b"POST http://elsewhere.test/upload?x=1 HTTP/2\r\nHost: shop.test\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n"
        b"Content-Length: %d\r\nCookie: old=1\r\n\r\n%s\r\n" % (len(body), body)
    )
    code, output = run(url, "--request-file", str(raw), "-H", "Cookie: new=2")
    assert code == 0, output
    assert {(s.method, s.target, s.body) for s in seen} == {("POST", "/upload?x=1", body)}
    assert seen[0].headers["Cookie"] == "new=2"  # -H replaced the file's header
    assert seen[0].headers["Host"] == "shop.test"  # sent as written, to the URL's server

    seen.clear()
    raw.write_bytes(b"GET /state HTTP/1.1\nHost: shop.test\n\n\n")
    assert run(url, "--request-file", str(raw))[0] == 0
    assert {(s.method, s.body, "Content-Length" in s.headers) for s in seen} == {
        ("GET", b"", False)
    }

    seen.clear()  # Chrome's copy of an HTTP/2 request, and -d replacing its body
    raw.write_bytes(
        b":method: POST\n:authority: shop.test\n:scheme: https\n:path: /buy\n"
        b"content-type: application/json\n\n{}"
    )
    assert run(url, "--request-file", str(raw), "--json", '{"item_id": 7}')[0] == 0
    assert {(s.target, s.body) for s in seen} == {("/buy", b'{"item_id": 7}')}


def test_config_takes_command_line_overrides(sqlite_lab: LabProcess, tmp_path: Path) -> None:
    item = new_item_id()
    config = tmp_path / "race.toml"
    config.write_text(
        f"""
rounds = 1
[[requests]]
url = "{sqlite_lab.base_url}/inventory/vulnerable/purchase"
method = "POST"
json = {{ item_id = {item} }}
headers = {{ X-Race-Window-Ms = "20" }}
count = 1010
"""
    )
    reset = f'POST {sqlite_lab.base_url}/lab/reset {{"item_id": {item}, "stock": 1}}'
    args = ["attack", "--config", str(config), "--reset", reset]
    refused = runner.invoke(app, [*args, "--expect-max-successes", "1", "--rounds", "2"])
    assert refused.exit_code == 2
    assert "over the budget of 2000" in refused.output
    assert "--max-requests" in refused.output
    out = tmp_path / "race.json"
    result = runner.invoke(
        app,
        [*args, "--expect-max-successes", "1", "--rounds", "2", "--max-requests", "2100",
         "--technique", "last-byte", "--gate-wait-ms", "5", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # the file has no oracle: the flags gave it
    saved = RaceResult.from_json(out.read_text())
    assert saved.plan.oracle.expect_max_successes == 1
    assert (saved.plan.rounds, saved.plan.budget, saved.plan.gate_wait_ms) == (2, 2100, 5)
    assert saved.technique == "last-byte"

    mixed = runner.invoke(app, ["attack", sqlite_lab.base_url, "--config", str(config), "-n", "3"])
    assert mixed.exit_code == 2
    assert "the file gives the requests: drop URL, -n or edit the file" in flat(mixed.output)


def test_a_route_that_never_succeeds_is_not_a_pass(sqlite_lab: LabProcess) -> None:
    item = new_item_id()
    result = runner.invoke(
        app, buy(sqlite_lab, "vulnerabel", item, "--rounds", "2", "--expect-max-successes", "1")
    )
    assert result.exit_code == 3, result.output
    assert "no request succeeded in any of 2 round(s)" in result.output
    assert "404 x 10" in result.output


def test_unreachable_https_target_still_writes_both_reports(tmp_path: Path) -> None:
    out, junit = tmp_path / "race.json", tmp_path / "race.xml"
    result = runner.invoke(
        app,
        ["attack", f"https://127.0.0.1:{free_port()}/", "--expect-max-successes", "1",
         "--out", str(out), "--junit", str(junit)],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "cannot connect" in result.output
    assert "successes" not in result.output  # no round ran: no empty table of rounds
    assert RaceResult.from_json(out.read_text()).verdict.outcome == "inconclusive"
    assert 'type="inconclusive"' in junit.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1:1/", "-d", "@/nonexistent/body"], "cannot read /nonexistent/body"),
        (["http://127.0.0.1:99999/"], "not a valid URL"),
        (["http://[::1/"], "not a valid URL"),
        (["http://127.0.0.1:1/", "-H", "Content-Length: 99", "-d", "a=1"], "does not match"),
        (["http://127.0.0.1:1/", "-H", "Content-Length: abc", "-d", "a=1"], "Content-Length"),
        (["http://127.0.0.1:1/", "-H", "X-A: b\x00c"], "Illegal header value"),
        (["http://127.0.0.1:1/", "--out", "/nonexistent/dir/r.json"], "no such directory"),
        (["http://127.0.0.1:1/", "--junit", "/tmp"], "is a directory"),
        (["http://127.0.0.1:1/", "--success-json-value", "x"], "needs --success-json-path"),
        (["http://127.0.0.1:1/", "--probe-unit", "2"], "--probe-unit needs --probe"),
        (["http://127.0.0.1:1/", "--json", "{}", "--data-binary", "b"], "not both"),
        (["http://127.0.0.1:1/", "--json", "{}", "--json", "[]"], "give --json once"),
        (["http://127.0.0.1:1/", "--success-status", "99"], "not an HTTP status: 99"),
        (
            ["http://127.0.0.1:1/", "--technique", "single-packet", "--config", "/dev/null"],
            "the file gives the requests: drop URL",
        ),
        (["http://bücher.test/"], "write it as xn--bcher-kva.test"),
        (["http://a..b/"], "not a valid host name"),
        (["http://127.0.0.1:1/", "-X", "pöst"], "not an HTTP method"),
        (["http://127.0.0.1:1/", "-H", "X-A: \udcff"], "not valid UTF-8 text"),
        (["http://127.0.0.1:1/\udcff"], "not valid UTF-8 text"),
    ],
)
def test_bad_input_is_refused_before_sending(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["attack", *args, "--expect-max-successes", "1"])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_help_names_each_flag_once() -> None:
    result = runner.invoke(app, ["attack", "--help"], terminal_width=200)
    assert "--no-redact" in result.output
    assert "--no-no-redact" not in result.output


def test_more_of_curl(echo: tuple[str, list[Seen]], tmp_path: Path) -> None:
    url, seen = echo
    host = url.removeprefix("http://")
    code, output = run(
        host + "/caf%C3%A9/é?q=ü", "-d", "a", "--data-binary", "b", "-H", "X-Name: Zoë",
        "-H", "X-Empty;",
    )  # fmt: skip
    assert code == 0, output  # no scheme: http://, as curl assumes
    assert {(s.target, s.body) for s in seen} == {("/caf%C3%A9/%C3%A9?q=%C3%BC", b"a&b")}
    assert seen[0].headers["X-Name"] == "Zoë"  # UTF-8 on the wire
    assert seen[0].headers["X-Empty"] == ""

    seen.clear()
    raw = tmp_path / "req.http"
    raw.write_bytes(
        b"POST /api HTTP/1.1\nHost: shop.test\nContent-Type: application/json\nCookie: a=1\n"
        b"Transfer-Encoding: chunked\n\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert run(url, "--request-file", str(raw), "-H", "Cookie:")[0] == 0
    assert {s.body for s in seen} == {b"hello"}  # the chunks put together
    assert "Cookie" not in seen[0].headers  # -H 'Name:' removed the file's header
    assert "Transfer-Encoding" not in seen[0].headers

    seen.clear()
    assert run(url, "--request-file", str(raw), "-d", '{"a": 2}')[0] == 0
    assert {(s.body, s.headers["Content-Type"]) for s in seen} == {
        (b'{"a": 2}', "application/json")  # -d replaced the body; the file's type stayed
    }

    code, output = run(url + "/other", "--request-file", str(raw))
    assert code == 2
    assert "the path is the file's" in flat(output)


def test_state_reads_are_not_cut_by_the_report_cap(sqlite_lab: LabProcess) -> None:
    item = new_item_id()
    result = runner.invoke(
        app,
        buy(sqlite_lab, "atomic", item, "--max-body-bytes", "8", "--expect-max-successes", "1",
            "--reset", f'POST {sqlite_lab.base_url}/lab/reset {{"item_id": {item}, "stock": 1}}',
            "--probe", f"{sqlite_lab.base_url}/inventory/items/{item}", "--probe-path", "$.stock"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def echo_config(tmp_path: Path, url: str, request: str, oracle: str) -> Path:
    """A race.toml of two last-byte POSTs to the echo server's /buy."""
    config = tmp_path / "race.toml"
    config.write_text(
        f'technique = "last-byte"\n[[requests]]\nurl = "{url}/buy"\nmethod = "POST"\n'
        f"count = 2\n{request}\n[oracle]\n{oracle}\n"
    )
    return config


def test_config_probe_parts_and_session_are_overridable(
    echo: tuple[str, list[Seen]], tmp_path: Path
) -> None:
    url, seen = echo
    config = echo_config(
        tmp_path,
        url,
        'headers = { Authorization = "Bearer t0ken" }',
        f'probe = {{ url = "{url}/state", path = "$.n", unit = -1 }}',
    )
    result = runner.invoke(
        app, ["attack", "--config", str(config), "--probe-unit", "1", "--reset", f"POST {url}/r"]
    )
    assert result.exit_code == 1, result.output  # 2 successes, n never moved: +2 expected
    assert "2 successes x +1 = +2" in flat(result.output)
    reset = [s for s in seen if s.target == "/r"]
    assert reset
    assert reset[0].headers["Authorization"] == "Bearer t0ken"


def test_argument_bytes_and_removed_headers(echo: tuple[str, list[Seen]]) -> None:
    url, seen = echo
    host = url.removeprefix("http://")
    # "\udcff" is how Python hands over an argument byte that is not UTF-8
    code, output = run(host + "/x?next=http://a", "-d", "a=\udcff", "-H", "Content-Type:")
    assert code == 0, output
    assert {(s.target, s.body) for s in seen} == {("/x?next=http://a", b"a=\xff")}
    assert "Content-Type" not in seen[0].headers  # -H 'Name:' drops the form default too


def test_config_success_rule_is_overridden_part_by_part(
    echo: tuple[str, list[Seen]], tmp_path: Path
) -> None:
    url, _ = echo
    config = echo_config(
        tmp_path,
        url,
        "",
        'expect_max_successes = 1\nsuccess = { json_path = "$.ok", json_value = "false" }',
    )
    out = tmp_path / "race.json"
    args = ["attack", "--config", str(config), "--success-status", "200", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output  # {"ok": true} is still no success
    rule = RaceResult.from_json(out.read_text()).plan.oracle.success
    assert (rule.statuses, rule.json_path, rule.json_value) == ((200,), "$.ok", "false")
    result = runner.invoke(app, [*args, "--success-json-value", "true"])
    assert result.exit_code == 1, result.output  # now both succeed: more than 1


def test_config_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "race.toml"
    config.write_bytes(b"rounds = 1\n# caf\xe9\n")
    result = runner.invoke(app, ["attack", "--config", str(config)])
    assert result.exit_code == 2
    assert "is not UTF-8 text" in flat(result.output)
