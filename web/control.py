"""Control: the status of the monitoring services."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from monitor.status import process_status, task_status
from web import runtime_of

bp = Blueprint("control", __name__)


@bp.get("/monitoring/status")
def status() -> Any:
    """Report beat and worker liveness and the last run of each periodic task."""
    rt = runtime_of(current_app)
    now = rt.clock()
    with rt.sessions() as session:
        return jsonify({"generated_at": now.isoformat(),
                        "processes": process_status(session, now),
                        "tasks": task_status(session)})
