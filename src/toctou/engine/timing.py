"""Timestamps servers report about themselves (the lab's ``Server-Timing: arrival``)."""

from __future__ import annotations

import re

__all__ = ["server_arrival_ns"]

# Server-Timing is a comma-separated list of `name;param=value` metrics (W3C Server Timing).
# Only one metric and one parameter are read, so a regex is enough; no general parser is needed.
_ARRIVAL = re.compile(
    r'(?:^|,)\s*arrival\s*;(?:[^,]*;)?\s*desc\s*=\s*"?(\d{1,20})"?', re.IGNORECASE
)


def server_arrival_ns(headers: tuple[tuple[str, str], ...]) -> int | None:
    """The server's arrival instant (wall-clock ns) from ``Server-Timing: arrival;desc="<ns>"``."""
    for name, value in headers:
        if name.lower() == "server-timing":
            match = _ARRIVAL.search(value)
            if match:
                return int(match.group(1))
    return None
