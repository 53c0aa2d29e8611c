"""What servers report about themselves in ``Server-Timing`` (the lab's ``arrival`` and
``worker`` metrics)."""

from __future__ import annotations

import re

__all__ = ["server_arrival_ns", "server_worker"]

# Server-Timing is a comma-separated list of `name;param=value` metrics (W3C Server Timing).
# Only two metrics and their `desc` parameter are read, so a regex is enough; no general parser.
_ARRIVAL = re.compile(
    r'(?:^|,)\s*arrival\s*;(?:[^,]*;)?\s*desc\s*=\s*"?(\d{1,20})"?', re.IGNORECASE
)
_WORKER = re.compile(
    r'(?:^|,)\s*worker\s*;(?:[^,]*;)?\s*desc\s*=\s*"?([\w.-]{1,64})"?', re.IGNORECASE
)


def _desc(headers: tuple[tuple[str, str], ...], metric: re.Pattern[str]) -> str | None:
    for name, value in headers:
        if name.lower() == "server-timing":
            match = metric.search(value)
            if match:
                return match.group(1)
    return None


def server_arrival_ns(headers: tuple[tuple[str, str], ...]) -> int | None:
    """The server's arrival instant (wall-clock ns) from ``Server-Timing: arrival;desc="<ns>"``."""
    found = _desc(headers, _ARRIVAL)
    return None if found is None else int(found)


def server_worker(headers: tuple[tuple[str, str], ...]) -> str | None:
    """The serving process a server names in ``Server-Timing: worker;desc="<id>"``."""
    return _desc(headers, _WORKER)
