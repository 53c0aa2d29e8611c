"""Where requests go: origin, TLS context, and opening timed connections."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from toctou.errors import TargetError

__all__ = ["Connection", "Origin", "open_connection"]


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        return cls(parts.scheme, parts.hostname or "", parts.port or (443 if tls else 80))

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def authority(self) -> str:
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def tls_context(alpn: list[str], *, insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    return context


@dataclass(slots=True)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    connected_ns: int
    alpn: str | None

    def close(self) -> None:
        self.writer.close()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), 1)


async def open_connection(
    origin: Origin, *, alpn: list[str], insecure: bool, timeout_s: float
) -> Connection:
    """TCP (and TLS) handshake, finished before any request byte is sent."""
    context = tls_context(alpn, insecure=insecure) if origin.tls else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(origin.host, origin.port, ssl=context, limit=2**20),
            timeout_s,
        )
    except TimeoutError:
        raise TargetError(
            f"connect to {origin.authority} timed out after {timeout_s:g} s"
        ) from None
    except ssl.SSLError as exc:
        raise TargetError(
            f"TLS handshake with {origin.authority} failed: {exc.reason or exc}"
        ) from None
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name the resolver refuses
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise TargetError(f"cannot connect to {origin.authority}: {why}") from None
    ssl_object = writer.get_extra_info("ssl_object")
    alpn_chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
    return Connection(reader, writer, time.perf_counter_ns(), alpn_chosen)
