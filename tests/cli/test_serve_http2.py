"""``toctou serve --http2``: hypercorn, HTTP/2 by prior knowledge (h2c) and HTTP/1.1 on one port."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest

from tests.cli.sockets import nodelay_of_accepted
from tests.conftest import new_item_id
from tests.lab.helpers import audit, reset
from toctou.cli.serve import H2_MAX_CONCURRENT_STREAMS, bind_socket, hypercorn_config
from toctou.lab.process import LabProcess, serve_lab
from toctou.lab.timing import ServerTiming, parse_server_timing

TIMEOUT_S = 10.0


@dataclass
class H2Reply:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def timing(self) -> ServerTiming:
        values = self.header("server-timing")
        assert len(values) == 1, self.headers
        parsed = parse_server_timing(values[0])
        assert parsed is not None, values
        return parsed

    def json(self) -> dict[str, object]:
        body: dict[str, object] = json.loads(self.body)
        return body


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class H2Client:
    """A minimal HTTP/2 client over one cleartext connection, prior knowledge (no upgrade)."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        assert url.hostname == "127.0.0.1"
        assert url.port is not None
        self.authority = f"127.0.0.1:{url.port}"
        self.sock = socket.create_connection(("127.0.0.1", url.port), timeout=TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.replies: dict[int, H2Reply] = {}
        self.ended: set[int] = set()
        self.flush()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.sock.close()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def open(
        self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), *, end: bool = True
    ) -> int:
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            stream,
            [(":method", method), (":scheme", "http"), (":authority", self.authority),
             (":path", path), *headers],
            end_stream=end,
        )  # fmt: skip
        self.replies[stream] = H2Reply()
        self.flush()
        return stream

    def send(self, stream: int, data: bytes, *, end: bool) -> None:
        self.conn.send_data(stream, data, end_stream=end)
        self.flush()

    def request(self, method: str, path: str, body: object = None) -> H2Reply:
        if body is None:
            stream = self.open(method, path)
        else:
            data = json.dumps(body).encode()
            stream = self.open(
                method,
                path,
                [("content-type", "application/json"), ("content-length", str(len(data)))],
                end=False,
            )
            self.send(stream, data, end=True)
        return self.wait([stream])[stream]

    def wait(self, streams: Sequence[int]) -> dict[int, H2Reply]:
        deadline = time.monotonic() + TIMEOUT_S
        while not set(streams) <= self.ended:
            assert time.monotonic() < deadline, "no complete HTTP/2 response in time"
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            for event in self.conn.receive_data(data):
                self._handle(event)
            self.flush()
        return {s: self.replies[s] for s in streams}

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            reply = self.replies[event.stream_id]
            for name, value in event.headers or ():
                if _text(name) == ":status":
                    reply.status = int(_text(value))
                else:
                    reply.headers.append((_text(name), _text(value)))
        elif isinstance(event, h2.events.DataReceived):
            self.replies[event.stream_id].body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.ended.add(event.stream_id)
        elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
            pytest.fail(f"HTTP/2 error from the server: {event}")


@pytest.fixture(scope="module")
def h2_lab() -> Iterator[LabProcess]:
    with serve_lab(http2=True) as lab:
        yield lab


def test_health_over_h2c_prior_knowledge(h2_lab: LabProcess) -> None:
    with H2Client(h2_lab.base_url) as client:
        before = time.time_ns()
        reply = client.request("GET", "/health")
        after = time.time_ns()
    assert reply.status == 200, reply
    assert reply.header("server") == ["hypercorn-h2"]
    stamp = reply.timing()
    assert before <= stamp.arrival_ns <= after
    assert stamp.worker == reply.json()["worker"]
    assert stamp.worker in h2_lab.worker_pids


def test_purchase_over_h2c(h2_lab: LabProcess) -> None:
    item = new_item_id()
    reset(h2_lab, item, 1)
    with H2Client(h2_lab.base_url) as client:
        bought = client.request("POST", "/inventory/atomic/purchase", {"item_id": item})
        sold_out = client.request("POST", "/inventory/atomic/purchase", {"item_id": item})
        bad = client.request("POST", "/inventory/atomic/purchase", {"item_id": "x"})
    assert bought.status == 201, bought
    order = bought.json()["order"]
    assert isinstance(order, dict)
    assert order["item_id"] == item
    assert (sold_out.status, sold_out.json()["reason"]) == (409, "out_of_stock")
    assert bad.status == 422
    stamps = [r.timing() for r in (bought, sold_out, bad)]
    assert [s.arrival_ns for s in stamps] == sorted(s.arrival_ns for s in stamps)
    assert audit(h2_lab, item)["holds"]


def test_streams_race_on_one_connection(h2_lab: LabProcess) -> None:
    """Twenty purchases as concurrent streams of one connection: the vulnerable flow oversells."""
    item = new_item_id()
    reset(h2_lab, item, 1)
    body = json.dumps({"item_id": item}).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(body))),
               ("x-race-window-ms", "50")]  # fmt: skip
    with H2Client(h2_lab.base_url) as client:
        streams = [
            client.open("POST", "/inventory/vulnerable/purchase", headers, end=False)
            for _ in range(20)
        ]
        for stream in streams:
            client.conn.send_data(stream, body, end_stream=True)
        client.flush()  # every last body byte in one write
        replies = client.wait(streams)
    assert sum(r.status == 201 for r in replies.values()) > 1
    assert not audit(h2_lab, item)["holds"]


def test_body_without_content_length_is_stamped_when_the_stream_ends(h2_lab: LabProcess) -> None:
    """HTTP/2 needs no Content-Length: arrival is still the end of the body, not the headers."""
    item = new_item_id()
    reset(h2_lab, item, 1)
    body = json.dumps({"item_id": item, "buyer": "slow"}).encode()
    with H2Client(h2_lab.base_url) as client:
        stream = client.open(
            "POST", "/inventory/atomic/purchase", [("content-type", "application/json")], end=False
        )
        client.send(stream, body[:5], end=False)
        first = time.time_ns()
        time.sleep(0.2)
        second = time.time_ns()
        client.send(stream, body[5:], end=True)
        reply = client.wait([stream])[stream]
    assert reply.status == 201, reply
    assert reply.timing().arrival_ns >= second
    assert reply.timing().arrival_ns - first >= 0.19e9


def test_http1_on_the_same_port(h2_lab: LabProcess) -> None:
    with httpx.Client(base_url=h2_lab.base_url, timeout=TIMEOUT_S) as client:
        for _ in range(3):  # one keep-alive connection
            reply = client.get("/health")
            assert (reply.status_code, reply.http_version) == (200, "HTTP/1.1")
            assert reply.headers["server"] == "hypercorn-h11"
            stamp = parse_server_timing(reply.headers["server-timing"])
            assert stamp is not None
            assert stamp.worker == reply.json()["worker"]


def test_the_stream_limit_is_announced(h2_lab: LabProcess) -> None:
    with H2Client(h2_lab.base_url) as client:
        client.request("GET", "/health")  # the server's SETTINGS came before the response
        limit = client.conn.remote_settings.max_concurrent_streams
    assert limit == H2_MAX_CONCURRENT_STREAMS == 100


def test_one_stream_over_the_limit_closes_the_connection(h2_lab: LabProcess) -> None:
    """What the documented limit means for a client: never more open streams than announced."""
    with H2Client(h2_lab.base_url) as client:
        # Opened before the server's SETTINGS arrive, so the client library does not stop us.
        for _ in range(H2_MAX_CONCURRENT_STREAMS + 1):
            client.open("POST", "/health", end=False)
        events: list[h2.events.Event] = []
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and (data := client.sock.recv(65536)):
            events += client.conn.receive_data(data)
            if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                break
    (terminated,) = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert terminated.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_two_workers_over_h2c() -> None:
    with serve_lab(workers=2, http2=True) as lab:
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while seen != lab.worker_pids and time.monotonic() < deadline:
            with H2Client(lab.base_url) as client:  # a fresh connection: any worker may take it
                reply = client.request("GET", "/health")
            assert reply.status == 200
            assert reply.timing().worker == reply.json()["worker"]
            seen.add(reply.timing().worker)
        assert len(lab.worker_pids) == 2
        assert seen == lab.worker_pids


def test_lab_control_needs_the_token_off_loopback_with_http2() -> None:
    # Bound to every address, but the test only ever talks to 127.0.0.1.
    with serve_lab(host="0.0.0.0", http2=True, env={"TOCTOU_ADMIN_TOKEN": "s3cret"}) as lab:
        reset_url = f"{lab.base_url}/lab/reset"
        assert httpx.post(reset_url, json={}).status_code == 401
        ok = httpx.post(reset_url, json={}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


async def _nodelay_of_accepted_hypercorn_connection() -> int:
    config = hypercorn_config(bind_socket("127.0.0.1", 0), workers=2, access_log=False)
    (sock,) = config.create_sockets().insecure_sockets  # what each worker serves on
    assert sock.proto == socket.IPPROTO_TCP
    return await nodelay_of_accepted(sock)


def test_hypercorn_connections_have_tcp_nodelay() -> None:
    assert asyncio.run(_nodelay_of_accepted_hypercorn_connection()) != 0


def test_hypercorn_runs_on_uvloop_like_uvicorn() -> None:
    """The lab extra installs uvloop; both servers then run the lab on it."""
    config = hypercorn_config(bind_socket("127.0.0.1", 0), workers=1, access_log=False)
    assert config.worker_class == "uvloop"
    config.create_sockets().insecure_sockets[0].close()
