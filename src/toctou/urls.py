"""URLs as they may be shown: in a log line, a report, a saved command."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["safe_url"]

_SECRET_PARAMS = re.compile(r"(?i)\b(password|passwd|pwd|secret|token)=[^&]*")


def safe_url(url: str) -> str:
    """``url`` with its password masked, in the authority and in the query
    (``mysql://u:***@h/db?password=***``)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL that can be taken apart: show none of it
        return "(a URL that could not be read)"
    query = _SECRET_PARAMS.sub(r"\1=***", parts.query)
    if password is None and query == parts.query:
        return url  # nothing to mask (and urlunsplit would drop sqlite:////'s empty authority)
    netloc = parts.netloc
    if password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))
