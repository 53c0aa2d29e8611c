"""Requests as people have them: a raw HTTP request copied from a proxy, or a reset spec."""

from __future__ import annotations

from urllib.parse import urlsplit

import h11

from toctou.engine.plan import RaceRequest
from toctou.errors import PlanError

__all__ = ["parse_raw_request", "parse_request_spec"]

_DROP = frozenset({"content-length", "connection", "transfer-encoding"})
_PSEUDO = (b":method", b":path", b":authority", b":scheme")


def _split_message(raw: bytes) -> tuple[list[bytes], bytes]:
    """Head lines (CR/LF stripped, blank ones dropped) and the body, byte for byte."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    if not ends:
        head, body = raw, b""
    else:
        cut = min(ends)
        head = raw[:cut]
        body = raw[cut + (4 if raw.startswith(b"\r\n\r\n", cut) else 2) :]
    lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
    return [line for line in lines if line.strip()], body


def _from_pseudo_headers(lines: list[bytes]) -> tuple[list[bytes], str | None]:
    """An HTTP/2 request as Chrome copies it (``:method: POST`` ...) as an HTTP/1.1 head."""
    pseudo: dict[bytes, bytes] = {}
    rest = []
    for line in lines:
        name, _, value = line.partition(b": ") if line.startswith(b":") else (b"", b"", b"")
        if name in _PSEUDO:
            pseudo[name] = value.strip()
        else:
            rest.append(line)
    if b":method" not in pseudo or b":path" not in pseudo:
        raise PlanError("an HTTP/2 request needs :method and :path")
    if b":authority" in pseudo and not any(x.lower().startswith(b"host:") for x in rest):
        rest.insert(0, b"Host: " + pseudo[b":authority"])
    scheme = pseudo[b":scheme"].decode("ascii", "replace") if b":scheme" in pseudo else None
    return [pseudo[b":method"] + b" " + pseudo[b":path"] + b" HTTP/1.1", *rest], scheme


def _body_as_meant(body: bytes, declared: bytes | None) -> bytes:
    """Drop the line ends an editor or a copy added after the body (never bytes it declared)."""
    if declared is not None and declared.strip().isdigit():
        length = int(declared)
        if len(body) > length and not body[length:].strip(b"\r\n"):
            return body[:length]
        return body
    return body if body.strip(b"\r\n") else b""


def parse_raw_request(raw: bytes, *, base_url: str | None = None) -> RaceRequest:
    """Parse a raw request (Burp, browser dev tools, ``curl -v``) with h11 acting as the server.

    The URL's scheme, host and port come from ``base_url`` if given, whatever the file's request
    line or Host says (the Host header itself is sent as written), else from an absolute
    request target, else ``http://`` (or the ``:scheme`` of an HTTP/2 copy) + Host. HTTP/2
    copies are accepted in both shapes tools show: a request line ending in ``HTTP/2`` and
    Chrome's ``:method:``/``:path:`` pseudo-headers. Bare LF line ends are accepted in the head;
    the body is kept byte for byte, except line ends after it that Content-Length does not count
    (or, without Content-Length, a body of nothing but line ends). Content-Length is recomputed.
    """
    lines, body = _split_message(raw)
    if not lines:
        raise PlanError("the request file is empty")
    scheme = None
    if lines[0].startswith(b":"):
        lines, scheme = _from_pseudo_headers(lines)
    method_target, _, version = lines[0].rpartition(b" ")
    if version.upper() in (b"HTTP/2", b"HTTP/2.0", b"HTTP/3", b"HTTP/3.0"):
        lines[0] = method_target + b" HTTP/1.1"  # the same request; the technique picks the wire
    declared = next(
        (x.partition(b":")[2] for x in lines[1:] if x.lower().startswith(b"content-length:")),
        None,
    )
    body = _body_as_meant(body, declared)
    if base_url is not None and not any(x.lower().startswith(b"host:") for x in lines[1:]):
        lines.append(b"Host: " + urlsplit(base_url).netloc.encode())
    headers_only = b"\r\n".join(x for x in lines if not x.lower().startswith(b"content-length:"))
    length = f"\r\nContent-Length: {len(body)}".encode() if body else b""
    conn = h11.Connection(our_role=h11.SERVER)
    conn.receive_data(headers_only + length + b"\r\n\r\n" + body)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise PlanError(f"not an HTTP/1.1 request: {exc}") from None
    if not isinstance(event, h11.Request):
        raise PlanError("not a complete HTTP/1.1 request (missing blank line after the headers?)")
    headers = tuple(
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in event.headers.raw_items()
        if k.decode("latin-1").lower() not in _DROP
    )
    target = event.target.decode("latin-1")
    host = next((v for k, v in headers if k.lower() == "host"), None)
    absolute = target.startswith(("http://", "https://"))
    if base_url is not None:
        base = urlsplit(base_url)
        if absolute:
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        url = f"{base.scheme}://{base.netloc}{target}"
    elif absolute:
        url = target
    elif host:
        url = f"{scheme or 'http'}://{host}{target}"
    else:
        raise PlanError("the request has no Host header; give the target URL as well")
    return RaceRequest(url=url, method=event.method.decode("ascii"), headers=headers, body=body)


def parse_request_spec(spec: str) -> RaceRequest:
    """``'METHOD URL [BODY]'`` or just ``URL`` (GET); a JSON body gets its Content-Type."""
    words = _split(spec)
    if not words:
        raise PlanError("an empty request spec")
    if len(words) == 1:
        return RaceRequest(url=words[0])
    method, url, *rest = words
    body = " ".join(rest).encode()
    headers: tuple[tuple[str, str], ...] = ()
    if body.lstrip().startswith((b"{", b"[")):
        headers = (("Content-Type", "application/json"),)
    return RaceRequest(url=url, method=method.upper(), headers=headers, body=body)


def _split(spec: str) -> list[str]:
    """METHOD and URL are the first two words; everything after is the body, verbatim."""
    method, _, rest = spec.strip().partition(" ")
    url, _, body = rest.strip().partition(" ")
    return [w for w in (method, url, body.strip()) if w]
