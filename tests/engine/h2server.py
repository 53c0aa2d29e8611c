"""A small HTTP/2 server (h2 library, TLS with ALPN or cleartext) that stamps arrival times.

It answers every stream 200 with ``{"n": <stream count so far>}`` and the lab's
``Server-Timing: arrival;desc=...`` header, and counts how many reads delivered final frames,
so tests can check that a batch's completions arrived together.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

from tests.engine.hostile import Handler


@dataclass
class H2Stats:
    completed: int = 0
    connections: int = 0
    reads_with_completions: list[int] = field(default_factory=list)


def h2_handler(stats: H2Stats, max_streams: int = 100, mode: str = "ok") -> Handler:
    """``mode``: ok (answer), stall (never answer), reset (RST_STREAM every stream),
    huge (announce 10 MB, send 12 KB, then stall), continuation (a header block that never
    ends: HEADERS without END_HEADERS, then CONTINUATION frames of 16 KB without end)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.connections += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams})
        writer.write(conn.data_to_send())
        while data := await reader.read(65_536):
            arrived = time.time_ns()
            ended = 0
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if isinstance(event, h2.events.StreamEnded):
                    ended += 1
                    stats.completed += 1
                    if mode == "stall":
                        continue
                    if mode == "continuation":
                        writer.write(conn.data_to_send())
                        await _flood_continuation(writer, event.stream_id or 1)
                        return
                    if mode == "reset":
                        conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                        continue
                    if mode == "huge":
                        conn.send_headers(
                            event.stream_id,
                            [(":status", "200"), ("content-length", str(10 * 2**20))],
                        )
                        conn.send_data(event.stream_id, b"z" * 12_000)
                        continue
                    body = json.dumps({"n": stats.completed}).encode()
                    conn.send_headers(
                        event.stream_id,
                        [
                            (":status", "200"),
                            ("content-length", str(len(body))),
                            ("server-timing", f'arrival;desc="{arrived}"'),
                        ],
                    )
                    conn.send_data(event.stream_id, body, end_stream=True)
            if ended:
                stats.reads_with_completions.append(ended)
            writer.write(conn.data_to_send())
            await writer.drain()

    return handle


def _frame(kind: int, stream_id: int, payload: bytes) -> bytes:
    """A raw HTTP/2 frame with no flags (h2 would not let us send a header block unended)."""
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, 0]) + stream_id.to_bytes(4, "big") + payload
    )


async def _flood_continuation(writer: asyncio.StreamWriter, stream_id: int) -> None:
    """HEADERS without END_HEADERS, then up to 1,000 CONTINUATION frames (16 MB) without it."""
    headers, continuation = 0x1, 0x9
    writer.write(_frame(headers, stream_id, b"\x88"))  # ":status: 200", and no end
    chunk = _frame(continuation, stream_id, b"\x00" * 16_384)
    try:
        for _ in range(1_000):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # the client gave up on the connection, as it should
