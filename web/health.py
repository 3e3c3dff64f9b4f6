"""Health: the latest (or a fresh) health report per target, usable by a load balancer."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from monitor.collect import ClientCache
from monitor.db import Target
from monitor.health.checks import HealthCheckType, HealthStatus, worst
from monitor.health.service import check_target, latest_reports
from web import runtime_of
from web.errors import ApiError
from web.params import optional_int

bp = Blueprint("health", __name__)
_clients: ClientCache | None = None
# Healthy and degraded keep a target in a load balancer; unhealthy and unknown take it out.
SERVING = {HealthStatus.HEALTHY, HealthStatus.DEGRADED}


def _fresh() -> bool:
    raw = request.args.get("fresh", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid_parameter", "fresh must be true or false",
                       {"parameter": "fresh", "value": raw})
    return raw in ("true", "1")


def _client_cache() -> ClientCache:
    global _clients
    if _clients is None:
        s = runtime_of(current_app).settings
        _clients = ClientCache(s.redis_connection_timeout, s.redis_operation_timeout,
                               s.redis_max_connections)
    return _clients


def _fresh_reports(only: HealthCheckType | None) -> list[dict[str, Any]]:
    rt = runtime_of(current_app)
    query = select(Target.id).where(Target.enabled.is_(True)).order_by(Target.id)
    project_id, name = optional_int("project_id"), request.args.get("target")
    if project_id is not None:
        query = query.where(Target.project_id == project_id)
    if name:
        query = query.where(Target.name == name)
    with rt.sessions() as session:
        ids = list(session.scalars(query))
    reports = [check_target(rt.sessions, _client_cache(), i, rt.clock(), rt.settings, only)
               for i in ids]
    return [r.to_dict() for r in reports if r is not None]


def _reports(only: HealthCheckType | None) -> list[dict[str, Any]]:
    if _fresh():
        return _fresh_reports(only)
    rt = runtime_of(current_app)
    with rt.sessions() as session:
        reports = latest_reports(session, optional_int("project_id"),
                                 request.args.get("target") or None)
    if only is not None:
        for report in reports:
            check = report["checks"].get(str(only))
            report["checks"] = {str(only): check} if check else {}
            report["status"] = check["status"] if check else "unknown"
    return reports


def _respond(reports: list[dict[str, Any]]) -> Any:
    overall = worst([HealthStatus(r["status"]) for r in reports])
    code = 200 if overall in SERVING else 503
    return jsonify({"status": str(overall), "targets": reports}), code


@bp.get("/health")
def health() -> Any:
    """Return the overall and per-check status of each target; 503 when unhealthy."""
    return _respond(_reports(None))


@bp.get("/health/<check_type>")
def health_check(check_type: str) -> Any:
    """Return one check of each target; 404 listing the valid types for an unknown one."""
    valid = [str(t) for t in HealthCheckType]
    if check_type not in valid:
        raise ApiError(404, "unknown_check_type",
                       f"No health check {check_type!r}; valid types: {', '.join(valid)}",
                       {"valid_types": valid})
    return _respond(_reports(HealthCheckType(check_type)))
