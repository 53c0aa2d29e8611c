"""Arrival spread of each race technique, after Kettle: 20 requests x N batches, server stamps.

Every lab response carries ``Server-Timing: arrival`` (the server's wall clock when the request
became complete). One batch's spread is max - min of its 20 stamps. For each technique (naive,
seed-style, last-byte, single-packet) the batches run on plain loopback and through the jitter
proxy (every chunk delayed by 20 ± 10 ms, independently), against one hypercorn lab that speaks
HTTP/1.1 and h2c; naive and last-byte also run against the uvicorn lab.

The request is ``POST /inventory/vulnerable/purchase`` with a body that is not JSON: the
application reads the whole body (so the stamp is taken when its last byte arrived) and answers
400 before touching the database. A body-less ``GET /health`` is stamped when the application is
called, which HTTP/2 servers such as hypercorn do on HEADERS, before the withheld END_STREAM: the
extra ``GET /health`` row shows it (a negative lag: the handler ran before the release).

The server's floor: all 20 requests already in its socket buffers at once (20 complete HTTP/2
requests in one write on one h2c connection; 20 HTTP/1.1 requests pipelined in one write; 20
HTTP/1.1 connections filled while the server process is stopped with SIGSTOP). For single-packet
a fourth, sent by this script with ``h2`` alone: 20 streams opened with all but their last body
byte, then, after the engine's gate wait, all 20 final frames in one write. That is the most a
perfect single-packet sender can hand the server, and it leaves the server in the same state as
the attack (20 handlers waiting for END_STREAM, which costs a Python server a little more per
request than starting 20 handlers whose data is all there), so single-packet is judged against
it; the ratio to the complete-requests floor is printed too.

With tcpdump available (run as root), loopback traffic to the lab's port is captured and the
kernel-level spread is the spread of the capture times of the packets that carry each request's
final byte (HTTP/1.1: the byte that completes the request; HTTP/2: the END_STREAM frame).

Batches are interleaved (batch 1 of every row, then batch 2...), so load from other processes on
the machine hits every row alike. Columns, per row: median and p90 over the batches of the server
arrival spread; median client release spread (``RoundResult.release_spread``); median and p90
kernel spread and the number of distinct packets carrying final bytes; median lag from the
client's release to the server's stamp (the monotonic clock moved to the wall clock at the end of
each batch); ``early``: requests stamped more than 5 ms before their release (the server did not
wait for the withheld bytes).

    .venv/bin/python benchmarks/spread.py            # about a minute
    .venv/bin/python benchmarks/spread.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h11

from toctou.engine import Oracle, RacePlan, RaceRequest, RoundResult, Technique, run_race
from toctou.engine.http1 import encode_request, read_response
from toctou.engine.timing import server_arrival_ns
from toctou.lab.process import LabProcess, serve_lab

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jitterproxy import MODELS, proxy_process

TECHNIQUES: tuple[Technique, ...] = ("naive", "seed-style", "last-byte", "single-packet")
PATH = "/inventory/vulnerable/purchase"
BODY = b'{"item_id": '  # not JSON: read in full, rejected with 400, no database
JSON = (("Content-Type", "application/json"),)
SPA_FLOOR_FACTOR = 1.5
LBS_OVER_NAIVE = 5.0
NS_PER_MS = 1_000_000
HELD_GATE_S = 0.1  # the engine's default gate wait (RacePlan.gate_wait_ms)
# The engine stamps a release after its write returns; on a busy machine the woken server can run
# first for a scheduler time slice, so only a stamp this much before the release counts as early.
EARLY_MS = 5.0


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Batch:
    """One batch of requests: spreads in ms, and the wall-clock window it ran in (ns)."""

    arrival_ms: float | None
    release_ms: float | None = None
    lag_ms: float | None = None  # median of (server arrival - client release)
    early: int = 0  # requests the server had complete (well) before the client released them
    errors: int = 0
    window: tuple[int, int] = (0, 0)
    kernel_ms: float | None = None
    kernel_packets: int = 0


@dataclass
class Row:
    label: str
    path: str
    server: str
    batches: list[Batch] = field(default_factory=list)

    def arrival(self) -> list[float]:
        return [b.arrival_ms for b in self.batches if b.arrival_ms is not None]

    def median_arrival(self) -> float | None:
        values = self.arrival()
        return statistics.median(values) if values else None


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _p90(values: Sequence[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    if len(present) < 2:
        return present[0] if present else None
    return statistics.quantiles(present, n=10, method="inclusive")[-1]


def _spread_ms(instants: Sequence[int]) -> float | None:
    return (max(instants) - min(instants)) / NS_PER_MS if len(instants) > 1 else None


# --- the engine's techniques ----------------------------------------------------------------


def _plan(url: str, technique: Technique, count: int, *, body: bool) -> RacePlan:
    """One batch (one round) of ``count`` requests; the oracle never fires, only timings count."""
    request = (
        RaceRequest(f"{url}{PATH}", "POST", JSON, BODY) if body else RaceRequest(f"{url}/health")
    )
    return RacePlan.repeat(
        request,
        count,
        technique=technique,
        oracle=Oracle(expect_max_successes=10_000),
    )


def _batch(result: RoundResult, start_ns: int) -> Batch:
    """Timings of one round; client instants are moved to the wall clock as the round ends."""
    offset = time.time_ns() - time.perf_counter_ns()
    pairs = [
        (a.server_arrival_ns, a.released_ns + offset)
        for a in result.attempts
        if a.server_arrival_ns is not None and a.released_ns is not None
    ]
    arrival, release = result.arrival_spread, result.release_spread
    return Batch(
        arrival_ms=arrival.range_ns / NS_PER_MS if arrival else None,
        release_ms=release.range_ns / NS_PER_MS if release else None,
        lag_ms=_median([(s - c) / NS_PER_MS for s, c in pairs]),
        early=sum(1 for s, c in pairs if s < c - EARLY_MS * NS_PER_MS),
        errors=result.errors + (1 if result.batch_error else 0),
        window=(start_ns, time.time_ns()),
    )


Job = Callable[[], Batch]


def technique_job(url: str, technique: Technique, count: int, *, body: bool) -> Job:
    """One batch with the engine: a plan of one round."""
    plan = _plan(url, technique, count, body=body)

    def job() -> Batch:
        start = time.time_ns()
        done: list[Batch] = []
        run_race(plan, on_round=lambda result: done.append(_batch(result, start)))
        return done[0]

    return job


def floor_job(send: Callable[[], list[int]]) -> Job:
    def job() -> Batch:
        start = time.time_ns()
        arrivals = send()
        return Batch(_spread_ms(arrivals), window=(start, time.time_ns()))

    return job


def run_interleaved(jobs: Sequence[tuple[Row, Job]], batches: int) -> None:
    """Batch 1 of every row, then batch 2 of every row...: load drifts hit every row alike."""
    for _ in range(batches):
        for row, job in jobs:
            row.batches.append(job())
            time.sleep(0.02)


# --- the server's floor: every request already waiting at once ---------------------------


def _h2_headers(authority: str) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", authority),
        (":path", PATH),
        ("content-type", "application/json"),
        ("content-length", str(len(BODY))),
    ]


async def _h2_settings(conn: h2.connection.H2Connection, reader: asyncio.StreamReader) -> bytes:
    """Read until the server's SETTINGS arrived; returns what h2 wants to send back."""
    while True:
        data = await asyncio.wait_for(reader.read(65_536), 5)
        if not data:
            raise ConnectionError("closed before SETTINGS")
        events = conn.receive_data(data)
        if any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events):
            return conn.data_to_send()


async def _h2_collect(
    conn: h2.connection.H2Connection, reader: asyncio.StreamReader, count: int
) -> list[int]:
    arrivals: list[int] = []
    ended = 0
    while ended < count:
        data = await asyncio.wait_for(reader.read(65_536), 15)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                pairs = [(str(k), str(v)) for k, v in event.headers or ()]
                stamp = server_arrival_ns(tuple(pairs))
                if stamp is not None:
                    arrivals.append(stamp)
            elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                ended += 1
    return arrivals


async def h2_one_write(port: int, count: int, *, held: bool = False) -> list[int]:
    """``count`` HTTP/2 requests on one h2c connection, all completed by one write.

    ``held=False``: ``count`` complete requests in that one write. ``held=True``: what a perfect
    single-packet sender hands the server, written with ``h2`` alone (no engine): every HEADERS
    and every body but its last byte first, the engine's default gate wait (100 ms), then the
    final one-byte DATA frames with END_STREAM in one write. The server is then in the state a
    single-packet attack leaves it in (its handlers already waiting for END_STREAM), so that is
    the floor for that technique, where complete requests make it start new handlers instead.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        writer.write(await _h2_settings(conn, reader))
        await asyncio.sleep(0.05)
        streams = []
        for _ in range(count):
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, _h2_headers(f"127.0.0.1:{port}"))
            conn.send_data(stream_id, BODY[:-1] if held else BODY, end_stream=not held)
            streams.append(stream_id)
        if held:
            writer.write(conn.data_to_send())
            await asyncio.sleep(HELD_GATE_S)
            for stream_id in streams:
                conn.send_data(stream_id, BODY[-1:], end_stream=True)
        writer.write(conn.data_to_send())
        return await _h2_collect(conn, reader, count)
    finally:
        writer.close()


def _h1_wire(port: int) -> bytes:
    return encode_request(RaceRequest(f"http://127.0.0.1:{port}{PATH}", "POST", JSON, BODY))


async def h1_pipelined(port: int, count: int) -> list[int]:
    """``count`` HTTP/1.1 requests pipelined in one write on one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_h1_wire(port) * count)
        parser = h11.Connection(our_role=h11.CLIENT)
        arrivals = []
        for _ in range(count):
            stamp = await _h1_next_response(parser, reader)
            if stamp is not None:
                arrivals.append(stamp)
            parser.start_next_cycle()
        return arrivals
    finally:
        writer.close()


async def _h1_next_response(parser: h11.Connection, reader: asyncio.StreamReader) -> int | None:
    """One response of a pipelined series (the parser keeps bytes of the next ones)."""
    parser.send(h11.Request(method="POST", target="/", headers=[("Host", "x")]))
    parser.send(h11.EndOfMessage())
    stamp = None
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            data = await asyncio.wait_for(reader.read(65_536), 15)
            parser.receive_data(data)
        elif isinstance(event, h11.Response):
            headers = tuple((k.decode(), v.decode()) for k, v in event.headers)
            stamp = server_arrival_ns(headers)
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return stamp


async def h1_paused(port: int, count: int, pid: int) -> list[int]:
    """``count`` HTTP/1.1 connections, each request written in full while the server is stopped."""
    wire = _h1_wire(port)
    os.kill(pid, signal.SIGSTOP)
    try:
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
        for _, writer in streams:
            writer.write(wire)
            await writer.drain()
        await asyncio.sleep(0.05)
    finally:
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    responses = await asyncio.gather(
        *(read_response(r, method="POST", deadline=deadline, max_body=65_536) for r, _ in streams)
    )
    for _, writer in streams:
        writer.close()
    return [s for s in (server_arrival_ns(r.headers) for r in responses) if s is not None]


# --- kernel-level spread: tcpdump on loopback ------------------------------------------------


@contextlib.contextmanager
def capture(port: int, directory: Path) -> Iterator[Path | None]:
    """Capture client-to-server packets to ``port`` on lo; yields the pcap path (None: no tool)."""
    tool = shutil.which("tcpdump")
    if tool is None or os.geteuid() != 0:
        yield None
        return
    pcap = directory / f"lab-{port}.pcap"
    argv = [
        tool, "-i", "lo", "-U", "--immediate-mode", "-n", "-s", "65535", "-B", "16384",
        "-Z", "root", "--time-stamp-precision=nano", "-w", str(pcap), f"tcp dst port {port}",
    ]  # fmt: skip
    process = subprocess.Popen(argv, stderr=subprocess.PIPE)
    try:
        _wait_listening(process)
        yield pcap
    finally:
        time.sleep(1.0)  # let the last packets reach the file
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
        dropped = re.search(rb"(\d+) packets dropped by kernel", err or b"")
        if dropped and int(dropped.group(1)):
            print(f"warning: tcpdump dropped {int(dropped.group(1))} packets", file=sys.stderr)


def _wait_listening(process: subprocess.Popen[bytes]) -> None:
    assert process.stderr is not None
    line = process.stderr.readline()  # "listening on lo, link-type ..." once it captures
    if b"listening" not in line:
        process.kill()
        raise RuntimeError(f"tcpdump did not start: {line.decode(errors='replace')}")
    time.sleep(0.2)


@dataclass
class Packet:
    time_ns: int
    src_port: int
    syn: bool
    payload: bytes


def read_pcap(path: Path) -> list[Packet]:
    """TCP packets of a pcap (nanosecond or microsecond, Ethernet or Linux cooked link)."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    scale = {0xA1B23C4D: 1, 0xA1B2C3D4: 1000}[magic]
    link = struct.unpack("<I", data[20:24])[0]
    header = {1: 14, 113: 16}[link]
    packets, offset = [], 24
    while offset + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack("<IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        packet = _tcp(frame[header:], sec * 1_000_000_000 + frac * scale)
        if packet is not None:
            packets.append(packet)
    return packets


def _tcp(ip: bytes, time_ns: int) -> Packet | None:
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    data_offset = (tcp[12] >> 4) * 4
    src_port = struct.unpack("!H", tcp[:2])[0]
    return Packet(time_ns, src_port, bool(tcp[13] & 0x02), bytes(tcp[data_offset:]))


def _connections(packets: Sequence[Packet]) -> list[list[Packet]]:
    """Payload packets per TCP connection (a SYN starts a new one on its source port)."""
    current: dict[int, list[Packet]] = {}
    done: list[list[Packet]] = []
    for packet in packets:
        if packet.syn and packet.src_port in current:
            done.append(current.pop(packet.src_port))
        if packet.payload:
            current.setdefault(packet.src_port, []).append(packet)
    return done + list(current.values())


def _completion_offsets(stream: bytes) -> list[int]:
    """Offset of the last byte of every complete request in a client-to-server byte stream."""
    if stream.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
        return _h2_completions(stream, 24)
    return _h1_completions(stream)


def _h2_completions(stream: bytes, position: int) -> list[int]:
    found: list[int] = []
    while position + 9 <= len(stream):
        length = int.from_bytes(stream[position : position + 3], "big")
        kind, flags = stream[position + 3], stream[position + 4]
        end = position + 9 + length
        if end > len(stream):
            break
        if kind in (0, 1) and flags & 0x01:  # DATA or HEADERS with END_STREAM
            found.append(end - 1)
        position = end
    return found


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def _h1_completions(stream: bytes) -> list[int]:
    found: list[int] = []
    position = 0
    while True:
        head_end = stream.find(b"\r\n\r\n", position)
        if head_end < 0:
            return found
        length = _CONTENT_LENGTH.search(stream, position, head_end)
        end = head_end + 4 + (int(length.group(1)) if length else 0)
        if end > len(stream):
            return found
        found.append(end - 1)
        position = end


def completion_times(packets: Sequence[Packet]) -> list[int]:
    """Capture time of the packet carrying each request's final byte, for every connection."""
    times = []
    for connection in _connections(packets):
        ends, total = [], 0
        for packet in connection:
            total += len(packet.payload)
            ends.append(total)
        stream = b"".join(p.payload for p in connection)
        for offset in _completion_offsets(stream):
            times.append(connection[bisect_left(ends, offset + 1)].time_ns)
    return times


def add_kernel_spreads(rows: Sequence[Row], pcap: Path | None) -> None:
    if pcap is None or not pcap.exists():
        return
    packets = read_pcap(pcap)
    for row in rows:
        for batch in row.batches:
            low, high = batch.window
            inside = [p for p in packets if low <= p.time_ns <= high]
            times = completion_times(inside)
            batch.kernel_packets = len(set(times))
            batch.kernel_ms = _spread_ms(times) if len(times) > 1 else None
            if times and len(set(times)) == 1:
                batch.kernel_ms = 0.0


# --- the runs -------------------------------------------------------------------------------


@dataclass
class Args:
    batches: int
    count: int
    delay_ms: float
    jitter_ms: float
    seed: int
    capture: bool
    model: str = "chunk"


def _port(lab: LabProcess) -> int:
    return int(lab.base_url.rsplit(":", 1)[1])


def hypercorn_jobs(lab: LabProcess, proxied: str, args: Args) -> list[tuple[Row, Job]]:
    jobs = [
        (Row(technique, path, "hypercorn"), technique_job(url, technique, args.count, body=True))
        for path, url in (("loopback", lab.base_url), ("jitter", proxied))
        for technique in TECHNIQUES
    ]
    health = technique_job(lab.base_url, "single-packet", args.count, body=False)
    jobs.append((Row("single-packet GET /health", "loopback", "hypercorn"), health))
    return jobs + floor_jobs(lab, args.count, "hypercorn", h2=True)


def uvicorn_jobs(lab: LabProcess, proxied: str, args: Args) -> list[tuple[Row, Job]]:
    jobs = [
        (Row(technique, path, "uvicorn"), technique_job(url, technique, args.count, body=True))
        for path, url in (("loopback", lab.base_url), ("jitter", proxied))
        for technique in ("naive", "last-byte")
    ]
    return jobs + floor_jobs(lab, args.count, "uvicorn", h2=False)


def floor_jobs(lab: LabProcess, n: int, server: str, *, h2: bool) -> list[tuple[Row, Job]]:
    port = _port(lab)
    (pid,) = lab.worker_pids
    senders: list[tuple[str, Callable[[], list[int]]]] = [
        ("floor: h1 pipelined, 1 write", lambda: asyncio.run(h1_pipelined(port, n))),
        ("floor: h1 x20 conns, server stopped", lambda: asyncio.run(h1_paused(port, n, pid))),
    ]
    if h2:
        senders[:0] = [
            ("floor: h2 1 write", lambda: asyncio.run(h2_one_write(port, n))),
            (
                "floor: h2 held streams, 1 write",
                lambda: asyncio.run(h2_one_write(port, n, held=True)),
            ),
        ]
    return [(Row(label, "loopback", server), floor_job(send)) for label, send in senders]


JobsFor = Callable[[LabProcess, str, Args], list[tuple[Row, Job]]]


def measure(jobs_for: JobsFor, args: Args, tmp: Path, *, http2: bool) -> list[Row]:
    """Start a lab (and a capture and a proxy in front of it) and run its rows' batches."""
    with serve_lab(http2=http2) as lab:
        port = _port(lab)
        pcap_cm = capture(port, tmp) if args.capture else contextlib.nullcontext(None)
        with pcap_cm as pcap, _proxy(port, args) as proxy_port:
            jobs = jobs_for(lab, f"http://127.0.0.1:{proxy_port}", args)
            run_interleaved(jobs, args.batches)
        rows = [row for row, _ in jobs]
        add_kernel_spreads(rows, pcap)
    return rows


def _proxy(port: int, args: Args) -> contextlib.AbstractContextManager[int]:
    return proxy_process(
        port, delay_ms=args.delay_ms, jitter_ms=args.jitter_ms, seed=args.seed, model=args.model
    )


# --- report ---------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


HEADER = (
    "| technique | path | server | batches | arrival median ms | arrival p90 ms "
    "| release median ms | kernel median ms | kernel p90 ms | final packets | lag median ms "
    "| early | errors |"
)


def table(rows: Sequence[Row]) -> str:
    lines = [HEADER, "|" + "---|" * 13]
    for row in rows:
        b = row.batches
        lines.append(
            f"| {row.label} | {row.path} | {row.server} | {len(row.arrival())}/{len(b)} "
            f"| {_fmt(row.median_arrival())} | {_fmt(_p90([x.arrival_ms for x in b]))} "
            f"| {_fmt(_median([x.release_ms for x in b]))} "
            f"| {_fmt(_median([x.kernel_ms for x in b]))} | {_fmt(_p90([x.kernel_ms for x in b]))} "
            f"| {_packets(b)} "
            f"| {_fmt(_median([x.lag_ms for x in b]))} | {sum(x.early for x in b)} "
            f"| {sum(x.errors for x in b)} |"
        )
    return "\n".join(lines)


def _packets(batches: Sequence[Batch]) -> str:
    counts = [b.kernel_packets for b in batches if b.kernel_packets]
    return f"{statistics.median(counts):g}" if counts else "-"


def _find(
    rows: Sequence[Row],
    label: str,
    path: str,
    *,
    kernel: bool = False,
    server: str = "hypercorn",
) -> float | None:
    row = next((r for r in rows if (r.label, r.path, r.server) == (label, path, server)), None)
    if row is None:
        return None
    return _median([b.kernel_ms for b in row.batches]) if kernel else row.median_arrival()


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def goals(rows: Sequence[Row]) -> list[str]:
    spa = _find(rows, "single-packet", "jitter")
    lines = []
    for floor_label, what in (
        ("floor: h2 held streams, 1 write", "h2, streams held, final frames in one write"),
        ("floor: h2 1 write", "h2, 20 complete requests in one write"),
    ):
        floor = _find(rows, floor_label, "loopback")
        ratio = _ratio(spa, floor)
        lines.append(
            f"- single-packet through the jitter proxy: median {_fmt(spa)} ms, server floor "
            f"({what}) {_fmt(floor)} ms, ratio {_fmt(ratio)} (goal <= {SPA_FLOOR_FACTOR}): "
            + ("MET" if ratio is not None and ratio <= SPA_FLOOR_FACTOR else "NOT MET")
        )
    for server in ("hypercorn", "uvicorn"):
        for path in ("loopback", "jitter"):
            lines.append(_lbs_line(rows, path, server, kernel=False))
            if _find(rows, "naive", path, kernel=True, server=server) is not None:
                lines.append(_lbs_line(rows, path, server, kernel=True))
    return lines


def _lbs_line(rows: Sequence[Row], path: str, server: str, *, kernel: bool) -> str:
    naive = _find(rows, "naive", path, kernel=kernel, server=server)
    lbs = _find(rows, "last-byte", path, kernel=kernel, server=server)
    gain = _ratio(naive, lbs)
    what = "kernel (tcpdump)" if kernel else "server arrival"
    return (
        f"- last-byte vs naive, {what} spread ({path}, {server}): naive {_fmt(naive)} ms / "
        f"last-byte {_fmt(lbs)} ms = {_fmt(gain)}x (goal >= {LBS_OVER_NAIVE:g}x): "
        + ("MET" if gain is not None and gain >= LBS_OVER_NAIVE else "NOT MET")
    )


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def parse_args(argv: Sequence[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--batches", type=int, default=10, help="batches per row (default 10)")
    parser.add_argument("-n", type=int, default=20, dest="count", help="requests per batch")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="jitter proxy mean delay")
    parser.add_argument("--jitter-ms", type=float, default=10.0, help="jitter proxy ± range")
    parser.add_argument("--seed", type=int, default=1, help="jitter proxy seed")
    parser.add_argument(
        "--jitter-model",
        choices=MODELS,
        default="chunk",
        help="chunk: every chunk its own delay (the issue's proxy, default); path: one drifting "
        "delay shared by all connections (see jitterproxy.Jitter)",
    )
    parser.add_argument("--no-capture", action="store_true", help="skip the tcpdump capture")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 batches of 10")
    ns = parser.parse_args(argv)
    if not (1 <= ns.batches <= 100 and 2 <= ns.count <= 100):
        parser.error("--batches must be within 1..100 and -n within 2..100")
    batches, count = (3, 10) if ns.quick else (ns.batches, ns.count)
    return Args(
        batches, count, ns.delay_ms, ns.jitter_ms, ns.seed, not ns.no_capture, ns.jitter_model
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    clock = time.perf_counter()
    load = _loadavg()
    with tempfile.TemporaryDirectory(prefix="toctou-spread-") as tmp:
        rows = measure(hypercorn_jobs, args, Path(tmp), http2=True)
        rows += measure(uvicorn_jobs, args, Path(tmp), http2=False)
    model = "per chunk" if args.model == "chunk" else "on a shared, drifting path"
    jitter = f"jitter proxy {args.delay_ms:g} ± {args.jitter_ms:g} ms {model}"
    took = time.perf_counter() - clock
    print(f"{args.count} requests x {args.batches} batches; {jitter}; {took:.0f} s")
    print(f"load average (1 min) before {load}, after {_loadavg()}, {os.cpu_count()} CPUs\n")
    print(table(rows))
    print()
    print("\n".join(goals(rows)))


if __name__ == "__main__":
    main()
