"""HTTP/2 single-packet attack (Kettle, 2023), over TLS (ALPN h2) or h2c with prior knowledge.

Per connection: send every request's HEADERS and all of its body but the final byte, wait at the
gate, PING to warm the connection, then write every withheld final DATA frame (the last body byte,
or an empty frame, with END_STREAM) in one ``write()``: one TLS record and one TCP segment, so
network jitter cannot pull the requests apart. Batches larger than the server's
``MAX_CONCURRENT_STREAMS`` or than one segment holds are sharded over several connections, whose
final writes go out back to back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from toctou.engine.plan import RacePlan, RaceRequest
from toctou.engine.result import Attempt
from toctou.engine.target import Connection, Origin, open_connection
from toctou.engine.timing import server_arrival_ns
from toctou.errors import TargetError

__all__ = ["PACKET_CAPACITY", "probe_h2c", "run_http2"]

PROTOCOL = "HTTP/2"
# A final DATA frame is 9 header bytes + at most 1 payload byte; ~1,400 payload bytes fit one
# Ethernet-sized TCP segment (and one TLS record), so 140 completions per packet.
PACKET_CAPACITY = 140
_HOP_BY_HOP = frozenset(
    {"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}
)
_SETTINGS_TIMEOUT = 5.0


@dataclass(slots=True)
class _Stream:
    index: int
    request: RaceRequest
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytearray = field(default_factory=bytearray)
    body_size: int = 0
    truncated: bool = False
    released_ns: int | None = None
    first_byte_ns: int | None = None
    completed_ns: int | None = None
    error: str | None = None
    done: bool = False


@dataclass(slots=True)
class _Shard:
    number: int
    conn: Connection
    h2: h2.connection.H2Connection
    streams: dict[int, _Stream] = field(default_factory=dict)

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.conn.writer.write(data)


def _headers(request: RaceRequest, origin: Origin) -> list[tuple[str, str]]:
    path = request.target
    authority = request.header("host") or origin.authority
    headers = [
        (":method", request.method),
        (":scheme", origin.scheme),
        (":authority", authority),
        (":path", path),
    ]
    headers += [(k.lower(), v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
    names = {k for k, _ in headers}
    if request.body and "content-length" not in names:
        headers.append(("content-length", str(len(request.body))))
    if "user-agent" not in names:
        headers.append(("user-agent", "toctou"))
    return headers


async def _open_shard(plan: RacePlan, origin: Origin, number: int) -> _Shard:
    conn = await open_connection(
        origin, alpn=["h2"], insecure=plan.insecure, timeout_s=plan.timeouts.connect
    )
    if origin.tls and conn.alpn != "h2":
        await conn.aclose()
        raise TargetError(f"{origin.authority} did not negotiate HTTP/2 (ALPN: {conn.alpn})")
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    shard = _Shard(number, conn, h2.connection.H2Connection(config=config))
    try:
        shard.h2.initiate_connection()
        shard.flush()
        await _await_settings(shard, plan.timeouts.connect)
    except BaseException:
        await conn.aclose()
        raise
    return shard


async def _await_settings(shard: _Shard, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TargetError("no HTTP/2 SETTINGS from the server (does it speak HTTP/2?)")
        try:
            data = await asyncio.wait_for(shard.conn.reader.read(65_536), remaining)
        except TimeoutError:
            continue
        if not data:
            raise TargetError("the server closed the connection instead of speaking HTTP/2")
        try:
            events = shard.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            raise TargetError(f"not an HTTP/2 server: {exc}") from None
        shard.flush()
        if any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events):
            return


def _pre_send(shard: _Shard, origin: Origin, batch: list[tuple[int, RaceRequest]]) -> None:
    """Open a stream per request and send all of it but the final DATA frame."""
    for index, request in batch:
        # h2 hands out the next stream id only once the previous one has sent its headers.
        stream_id = shard.h2.get_next_available_stream_id()
        shard.h2.send_headers(stream_id, _headers(request, origin), end_stream=False)
        shard.streams[stream_id] = _Stream(index, request)
        body = request.body
        if len(body) > 1:
            if len(body) - 1 > shard.h2.local_flow_control_window(stream_id):
                raise TargetError(
                    f"request body of {len(body)} bytes exceeds the server's HTTP/2 window"
                )
            shard.h2.send_data(stream_id, body[:-1])
    shard.flush()


def _release(shard: _Shard) -> None:
    """Queue every withheld final frame, then hand them to the socket in one write."""
    for stream_id, stream in shard.streams.items():
        shard.h2.send_data(stream_id, stream.request.body[-1:], end_stream=True)
    data = shard.h2.data_to_send()
    released = time.perf_counter_ns()  # read before the write: the server cannot be earlier
    shard.conn.writer.write(data)
    for stream in shard.streams.values():
        stream.released_ns = released


def _handle(shard: _Shard, event: h2.events.Event, max_body: int) -> None:
    stream = shard.streams.get(getattr(event, "stream_id", 0) or 0)
    if isinstance(event, h2.events.ResponseReceived) and stream:
        pairs = [(str(k), str(v)) for k, v in event.headers or ()]
        stream.status = int(dict(pairs).get(":status", "0")) or None
        stream.headers = tuple((k, v) for k, v in pairs if not k.startswith(":"))
    elif isinstance(event, h2.events.DataReceived) and stream:
        data = event.data or b""
        shard.h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
        stream.body_size += len(data)
        room = max_body - len(stream.body)
        if room > 0:
            stream.body += data[:room]
        if stream.body_size > max_body and not stream.truncated:
            stream.truncated = True
            stream.error = f"body larger than {max_body} bytes: stopped reading"
            stream.done = True
            shard.h2.reset_stream(event.stream_id or 0)
    elif isinstance(event, h2.events.StreamEnded) and stream:
        stream.completed_ns = time.perf_counter_ns()
        stream.done = True
    elif isinstance(event, h2.events.StreamReset) and stream:
        stream.error = stream.error or f"stream reset by the server (code {event.error_code})"
        stream.done = True
    elif isinstance(event, h2.events.ConnectionTerminated):
        for s in shard.streams.values():
            if not s.done:
                s.error = f"connection terminated by the server (code {event.error_code})"
                s.done = True


async def _collect(shard: _Shard, plan: RacePlan) -> None:
    deadline = time.monotonic() + plan.timeouts.response
    try:
        while not all(s.done for s in shard.streams.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            data = await asyncio.wait_for(shard.conn.reader.read(65_536), remaining)
            if not data:
                raise ConnectionError("connection closed")
            now = time.perf_counter_ns()
            for event in shard.h2.receive_data(data):
                stream = shard.streams.get(getattr(event, "stream_id", 0) or 0)
                if stream and stream.first_byte_ns is None:
                    stream.first_byte_ns = now
                _handle(shard, event, plan.max_body_bytes)
            shard.flush()
    except TimeoutError:
        _fail_open(shard, "timed out waiting for the response")
    except h2.exceptions.ProtocolError as exc:
        _fail_open(shard, f"HTTP/2 protocol error: {exc}")
    except (ConnectionError, OSError) as exc:
        _fail_open(shard, f"connection failed: {exc}")
    finally:
        await shard.conn.aclose()


def _fail_open(shard: _Shard, error: str) -> None:
    for stream in shard.streams.values():
        if not stream.done:
            stream.error = error
            stream.done = True


def _attempt(shard: _Shard, stream: _Stream) -> Attempt:
    return Attempt(
        index=stream.index,
        connection=shard.number,
        protocol=PROTOCOL,
        status=stream.status,
        headers=stream.headers,
        body=bytes(stream.body).decode("utf-8", errors="replace"),
        body_size=stream.body_size,
        body_truncated=stream.truncated,
        error=stream.error,
        connected_ns=shard.conn.connected_ns,
        released_ns=stream.released_ns,
        first_byte_ns=stream.first_byte_ns,
        completed_ns=stream.completed_ns,
        server_arrival_ns=server_arrival_ns(stream.headers),
    )


def _shard_size(first: _Shard) -> int:
    limit = first.h2.remote_settings.max_concurrent_streams
    return max(1, min(PACKET_CAPACITY, limit or PACKET_CAPACITY))


async def run_http2(plan: RacePlan) -> list[Attempt]:
    """Send one batch as single-packet attacks; attempts come back in request order."""
    if any(r.offset_ms for r in plan.requests):
        raise TargetError("single-packet sends a batch in one packet: use last-byte for offsets")
    origin = Origin.of(plan.requests[0].url)
    first = await _open_shard(plan, origin, 0)
    total, size = len(plan.requests), _shard_size(first)
    count = -(-total // size)  # as few connections as the stream limit allows, each one full
    wanted = min(plan.connections or 1, total)
    if wanted > count:  # more asked for: spread evenly, 20 over 4 connections is 5 each
        count, size = wanted, -(-total // wanted)
    try:
        opened = await asyncio.gather(
            *(_open_shard(plan, origin, n) for n in range(1, count)), return_exceptions=True
        )
    except BaseException:  # cancelled while opening: the others close themselves
        await first.conn.aclose()
        raise
    failed = [o for o in opened if isinstance(o, BaseException)]
    shards = [first, *(o for o in opened if isinstance(o, _Shard))]
    if failed:  # close every connection that did open before giving up on the batch
        await asyncio.gather(*(s.conn.aclose() for s in shards))
        raise failed[0]
    indexed = list(enumerate(plan.requests))
    for n, shard in enumerate(shards):
        _pre_send(shard, origin, indexed[n * size : (n + 1) * size])
    await asyncio.sleep(plan.gate_wait_ms / 1000)
    for shard in shards:  # warm each connection so the final write is not the first in a while
        shard.h2.ping(b"toctou\x00\x00")
        shard.flush()
    for shard in shards:
        _release(shard)
    await asyncio.gather(*(_collect(s, plan) for s in shards))
    attempts = [_attempt(s, st) for s in shards for st in s.streams.values()]
    return sorted(attempts, key=lambda a: a.index)


async def probe_h2c(plan: RacePlan, origin: Origin) -> bool:
    """True when a cleartext server answers the HTTP/2 preface (prior knowledge)."""
    try:
        shard = await _open_shard(plan, origin, 0)
    except TargetError:
        return False
    await shard.conn.aclose()
    return True
