"""Requests as people have them: a raw HTTP/1.1 request copied from a proxy, or a reset spec."""

from __future__ import annotations

from urllib.parse import urlsplit

import h11

from toctou.engine.plan import RaceRequest
from toctou.errors import PlanError

__all__ = ["parse_raw_request", "parse_request_spec"]

_DROP = frozenset({"content-length", "connection", "transfer-encoding"})


def parse_raw_request(raw: bytes, *, base_url: str | None = None) -> RaceRequest:
    """Parse a raw request (Burp, browser dev tools, ``curl -v``) with h11 acting as the server.

    The URL comes from ``base_url`` (scheme, host and port) if given, else ``http://`` + Host.
    Bare LF line ends are accepted; Content-Length is recomputed from the body as given.
    """
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    if not head.strip():
        raise PlanError("the request file is empty")
    lines = [line for line in head.split(b"\n") if line.strip()]
    if base_url is not None and not any(line.lower().startswith(b"host:") for line in lines[1:]):
        lines.append(b"Host: " + urlsplit(base_url).netloc.encode())
    headers_only = b"\r\n".join(
        line for line in lines if not line.lower().startswith(b"content-length:")
    )
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
    if target.startswith(("http://", "https://")):
        url = target
    elif base_url is not None:
        base = urlsplit(base_url)
        url = f"{base.scheme}://{base.netloc}{target}"
    elif host:
        url = f"http://{host}{target}"
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
