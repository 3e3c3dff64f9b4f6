"""Liveness of beat and workers, and the last run of each periodic task."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.db import Heartbeat, TaskRun

# A process is alive when its heartbeat is younger than this many heartbeat periods.
STALE_AFTER_SECONDS = 35.0


def process_status(session: Session, now: datetime) -> dict[str, Any]:
    """Report each beat and worker process seen, and whether any of each kind is alive."""
    processes: dict[str, list[dict[str, Any]]] = {"beat": [], "worker": []}
    for hb in session.scalars(select(Heartbeat).order_by(Heartbeat.kind, Heartbeat.hostname)):
        age = (now - hb.last_seen).total_seconds()
        processes.setdefault(hb.kind, []).append({
            "hostname": hb.hostname, "pid": hb.pid, "last_seen": hb.last_seen.isoformat(),
            "age_seconds": round(age, 3), "alive": age <= STALE_AFTER_SECONDS,
        })
    return {
        kind: {"alive": any(p["alive"] for p in items), "processes": items}
        for kind, items in processes.items()
    }


def task_status(session: Session) -> list[dict[str, Any]]:
    """Report the last run of every periodic task."""
    return [
        {"task": run.name, "last_started_at": run.last_started_at.isoformat(),
         "last_finished_at": run.last_finished_at.isoformat() if run.last_finished_at else None,
         "last_duration_seconds": run.last_duration_seconds, "last_error": run.last_error,
         "runs": run.runs}
        for run in session.scalars(select(TaskRun).order_by(TaskRun.name))
    ]
