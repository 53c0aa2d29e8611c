"""HTTP/1.1 on the wire with h11: encode a request to bytes, read one response with limits."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import h11

from toctou.engine.plan import RaceRequest
from toctou.engine.target import Origin

__all__ = ["Response1", "encode_request", "read_response"]

USER_AGENT = "toctou"


def encode_request(request: RaceRequest) -> bytes:
    """The request's exact bytes, framed by h11 (Host and Content-Length added when missing)."""
    origin = Origin.of(request.url)
    headers = request.wire_headers()
    names = {k.lower() for k, _ in request.headers}
    if "host" not in names:
        headers.insert(0, (b"Host", origin.authority.encode("ascii")))
    if request.body and "content-length" not in names and "transfer-encoding" not in names:
        headers.append((b"Content-Length", b"%d" % len(request.body)))
    if (
        request.method in ("POST", "PUT", "PATCH")
        and not request.body
        and "content-length" not in names
    ):
        headers.append((b"Content-Length", b"0"))
    if "user-agent" not in names:
        headers.append((b"User-Agent", USER_AGENT.encode()))
    conn = h11.Connection(our_role=h11.CLIENT)
    out = conn.send(h11.Request(method=request.method, target=request.target, headers=headers))
    if request.body:
        out += conn.send(h11.Data(data=request.body))
    out += conn.send(h11.EndOfMessage())
    return out


@dataclass(slots=True)
class Response1:
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytearray | None = None
    body_size: int = 0
    truncated: bool = False
    first_byte_ns: int | None = None
    completed_ns: int | None = None
    error: str | None = None


async def read_response(
    reader: asyncio.StreamReader, *, method: str, deadline: float, max_body: int
) -> Response1:
    """Read one response; never holds more than ``max_body`` body bytes, never past ``deadline``
    (a ``time.monotonic()`` instant). Errors are recorded, not raised."""
    conn = h11.Connection(our_role=h11.CLIENT)
    # h11 needs to know a request was sent before it will parse a response.
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    result = Response1(body=bytearray())
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                data = await asyncio.wait_for(reader.read(65_536), remaining)
                if result.first_byte_ns is None and data:
                    result.first_byte_ns = time.perf_counter_ns()
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                result.status = event.status_code
                result.headers = tuple(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers
                )
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Data):
                _keep(result, bytes(event.data), max_body)
                if result.truncated:
                    result.error = f"body larger than {max_body} bytes: stopped reading"
                    return result
            elif isinstance(event, h11.EndOfMessage):
                result.completed_ns = time.perf_counter_ns()
                return result
            elif isinstance(event, h11.ConnectionClosed):
                result.error = "connection closed before a response"
                return result
    except TimeoutError:
        result.error = "timed out waiting for the response"
    except h11.RemoteProtocolError as exc:
        result.error = f"not an HTTP/1.1 response: {exc}"
    except (ConnectionError, OSError) as exc:
        result.error = f"connection failed: {type(exc).__name__}: {exc}"
    return result


def _keep(result: Response1, data: bytes, max_body: int) -> None:
    assert result.body is not None
    result.body_size += len(data)
    room = max_body - len(result.body)
    if room > 0:
        result.body += data[:room]
    if result.body_size > max_body:
        result.truncated = True
