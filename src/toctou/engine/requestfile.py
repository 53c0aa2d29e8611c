"""Requests as people have them: a raw HTTP request copied from a proxy, or a reset spec."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

import h11

from toctou.engine.plan import RaceRequest
from toctou.errors import PlanError

__all__ = ["credentials_to_header", "parse_raw_request", "parse_request_spec"]

_DROP_BYTES = frozenset({b"content-length", b"connection", b"transfer-encoding"})
_FRAMING = (b"content-length:", b"transfer-encoding:")


def _text(value: bytes) -> str:
    """A header value as text: UTF-8 as curl and browsers write it, else Latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _whole_body(conn: h11.Connection) -> bytes:
    """The body of a chunked request h11 has all of: its chunks, joined."""
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return body
        else:
            raise PlanError("the chunked body is incomplete (no final 0-size chunk)")


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
    chunked = any(
        x.lower().startswith(b"transfer-encoding:") and b"chunked" in x.lower() for x in lines[1:]
    )
    if base_url is not None and not any(x.lower().startswith(b"host:") for x in lines[1:]):
        lines.append(b"Host: " + urlsplit(base_url).netloc.encode())
    if chunked:  # h11 takes the chunks apart; the body is sent whole, with a Content-Length
        head = [x for x in lines if not x.lower().startswith(b"content-length:")]
    else:
        body = _body_as_meant(body, declared)
        head = [x for x in lines if not x.lower().startswith(_FRAMING)]
        if body:
            head.append(b"Content-Length: %d" % len(body))
    conn = h11.Connection(our_role=h11.SERVER)
    conn.receive_data(b"\r\n".join(head) + b"\r\n\r\n" + body)
    first = lines[0][:80].decode("latin-1")
    try:
        event = conn.next_event()
        if chunked:
            body = _whole_body(conn)
    except h11.RemoteProtocolError as exc:
        why = str(exc.args[0]).partition(":")[0]  # h11 appends the whole line as a bytearray
        raise PlanError(f"not an HTTP request (first line {first!r}): {why}") from None
    if not isinstance(event, h11.Request):
        raise PlanError(
            f"not a complete HTTP request (first line {first!r}): is the blank line after the "
            "headers missing?"
        )
    headers = tuple(
        (k.decode("ascii", "replace"), _text(v))
        for k, v in event.headers.raw_items()
        if k.lower() not in _DROP_BYTES
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


def credentials_to_header(
    url: str, headers: Sequence[tuple[str, str]] = ()
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """As curl: ``user:password@`` in a URL becomes Basic auth, unless ``headers`` has one.

    Returns the URL without its credentials and the headers with the ``Authorization`` added.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise PlanError(f"not a valid URL: {url!r} ({exc})") from None
    if parts.username is None:
        return url, tuple(headers)
    out = tuple(headers)
    if not any(k.lower() == "authorization" for k, _ in headers):
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        out += (("Authorization", "Basic " + base64.b64encode(pair).decode()),)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), out


def parse_request_spec(spec: str) -> RaceRequest:
    """``'METHOD URL [BODY]'`` or just ``URL`` (GET); a JSON body gets its Content-Type."""
    words = _split(spec)
    if not words:
        raise PlanError("an empty request spec")
    if len(words) == 1:
        url, headers = credentials_to_header(words[0])
        return RaceRequest(url=url, headers=headers)
    method, raw_url, *rest = words
    body = " ".join(rest).encode()
    url, headers = credentials_to_header(raw_url)
    if body.lstrip().startswith((b"{", b"[")):
        headers += (("Content-Type", "application/json"),)
    return RaceRequest(url=url, method=method.upper(), headers=headers, body=body)


def _split(spec: str) -> list[str]:
    """METHOD and URL are the first two words; everything after is the body, verbatim."""
    method, _, rest = spec.strip().partition(" ")
    url, _, body = rest.strip().partition(" ")
    return [w for w in (method, url, body.strip()) if w]
