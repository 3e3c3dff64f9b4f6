"""JSON errors for every failure: never an HTML page, never a 500 for bad input."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException

from monitor.targets import TargetError

log = logging.getLogger("redismon.web")

STATUS_OF_CODE = {"invalid": 400, "not_found": 404, "conflict": 409}


class ApiError(Exception):
    """An error with a code, a human message and a status."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def error_response(status: int, code: str, message: str,
                   details: dict[str, Any] | None = None) -> Any:
    """Build the JSON error body with its status."""
    body = {"error": code, "message": message, "details": details or {}}
    return jsonify(body), status


def register_errors(app: Flask) -> None:
    """Turn every exception into the JSON error shape."""

    @app.errorhandler(ApiError)
    def _api(exc: ApiError) -> Any:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(TargetError)
    def _target(exc: TargetError) -> Any:
        return error_response(STATUS_OF_CODE.get(exc.code, 400), exc.code, str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        body, status = error_response(exc.code or 500, code, exc.description or exc.name)
        # Keep the exception's own headers (Allow on a 405, Retry-After …), not its HTML type.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return body, status, headers

    @app.errorhandler(DataError)
    def _bad_value(exc: DataError) -> Any:
        # The database refused a value the request carried (a NUL byte, a number out of range).
        return error_response(400, "invalid_value", "A value in the request cannot be stored "
                                                    "or searched for (NUL byte or out of range)")

    @app.errorhandler(OperationalError)
    def _database(exc: OperationalError) -> Any:
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return error_response(503, "database_unavailable", "The history database is unavailable")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Unexpected error; see the server log")
