"""Control: pause and resume monitoring, and the status of the monitoring services."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from monitor.broker import queue_backlog
from monitor.control import control_view, set_monitoring
from monitor.db import CircuitBreaker, Target, transaction
from monitor.health.service import breaker_view
from monitor.status import process_status, task_status
from web import runtime_of
from web.errors import ApiError

bp = Blueprint("control", __name__)


def _actor_and_reason() -> tuple[str, str | None]:
    body = request.get_json(silent=True) if request.data else {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The body must be a JSON object or empty")
    unknown = sorted(set(body) - {"user", "reason"})
    if unknown:
        raise ApiError(400, "invalid_body", f"Unknown field(s): {', '.join(unknown)}",
                       {"allowed": ["reason", "user"]})
    user = body.get("user")
    if "user" in body and (not isinstance(user, str) or not user.strip()):
        raise ApiError(400, "invalid_body", "user must be a non-empty string")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ApiError(400, "invalid_body", "reason must be a string")
    return (user or f"anonymous@{request.remote_addr}"), reason


def _switch(enabled: bool) -> Any:
    actor, reason = _actor_and_reason()
    rt = runtime_of(current_app)
    with transaction(rt.sessions) as session:
        set_monitoring(session, enabled, actor, rt.clock(), reason)
        return jsonify(control_view(session))


@bp.post("/monitoring/start")
def start() -> Any:
    """Resume collection, health checks and alert evaluation."""
    return _switch(True)


@bp.post("/monitoring/stop")
def stop() -> Any:
    """Pause collection, health checks and alert evaluation without stopping processes."""
    return _switch(False)


def _breakers(session: Any) -> list[dict[str, Any]]:
    rows = session.execute(select(Target, CircuitBreaker).outerjoin(
        CircuitBreaker, CircuitBreaker.target_id == Target.id).order_by(Target.id)).all()
    return [{"target_id": t.id, "target": t.name, **breaker_view(b)} for t, b in rows]


@bp.get("/monitoring/status")
def status() -> Any:
    """Report the switch, beat and worker liveness, periodic tasks, backlog and breakers."""
    rt = runtime_of(current_app)
    now = rt.clock()
    with rt.sessions() as session:
        body = {"generated_at": now.isoformat(), "control": control_view(session),
                "processes": process_status(session, now), "tasks": task_status(session),
                "circuit_breakers": _breakers(session)}
    body["queue_backlog"] = queue_backlog(rt.settings.broker_url)
    return jsonify(body)
