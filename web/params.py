"""Query-parameter and body parsing with clear 400 errors."""
from __future__ import annotations

from typing import Any

from flask import request

from web.errors import ApiError


def optional_int(name: str) -> int | None:
    """Read an optional positive integer query parameter."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ApiError(400, "invalid_parameter", f"{name} must be a positive integer",
                       {"parameter": name, "value": raw})
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
