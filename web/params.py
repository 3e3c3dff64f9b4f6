"""Query-parameter and body parsing with clear 400 errors."""
from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter

from web.errors import ApiError

MAX_ID = 2**31 - 1  # larger ids cannot exist in our tables: such a URL is simply not found


class IdConverter(IntegerConverter):
    """A row id in a URL; 0 and numbers past any id are looked up as 0, which never exists,
    so they answer 404 like any unknown id instead of a database error."""

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if 1 <= number <= MAX_ID else 0


def optional_int(name: str) -> int | None:
    """Read an optional positive integer query parameter."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise ApiError(400, "invalid_parameter", f"{name} must be a positive integer",
                       {"parameter": name, "value": raw[:50]})
    return int(raw)


def json_body(allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """Read a JSON object body with only known keys and all required ones."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "invalid_body", f"Unknown field(s): {', '.join(unknown)}",
                       {"allowed": sorted(allowed)})
    missing = sorted(required - set(body))
    if missing:
        raise ApiError(400, "invalid_body", f"Missing field(s): {', '.join(missing)}")
    return body
