"""JSON paths (``$.stock``, ``$.items[0].id``) through jsonpath-ng, compiled once."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.ext.parser import parse

from toctou.errors import PlanError

__all__ = ["compile_json_path", "json_value"]


@cache
def compile_json_path(expression: str) -> JSONPath:
    try:
        return parse(expression)
    except Exception as exc:  # jsonpath-ng raises its own errors and bare Exceptions alike
        raise PlanError(f"not a JSON path: {expression!r} ({exc})") from None


def json_value(text: str, expression: str) -> Any:
    """The first value at ``expression`` in the JSON document ``text``; LookupError if none."""
    try:
        document = json.loads(text)
    except ValueError:
        raise LookupError("the body is not JSON") from None
    matches = compile_json_path(expression).find(document)
    if not matches:
        raise LookupError(f"nothing at {expression}")
    return matches[0].value
