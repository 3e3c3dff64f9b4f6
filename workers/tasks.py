"""Thin tasks: load ids, call a monitor function, log."""
from __future__ import annotations

import logging

from monitor.health.service import policy_of
from monitor.history import slot_for
from monitor.jobs import (
    beat_heartbeat,
    collect_target,
    enabled_target_ids,
    health_target,
    recorded_run,
)
from workers.celery_app import app, settings
from workers.context import clients, runtime

log = logging.getLogger("redismon.tasks")


@app.task(name="collect.dispatch")
def dispatch_collection() -> int:
    """Send one collection task per enabled target for the current slot."""
    rt = runtime()
    interval = settings.metrics_collection_interval
    with recorded_run(rt.sessions, "collect.dispatch", rt.clock):
        slot = slot_for(rt.clock(), interval)
        ids = enabled_target_ids(rt.sessions)
        for target_id in ids:
            collect.apply_async((target_id, slot), expires=interval)
    return len(ids)


@app.task(name="collect.target")
def collect(target_id: int, slot: int) -> str:
    """Probe one target and store its sample."""
    rt = runtime()
    outcome = collect_target(rt.sessions, clients(), target_id, slot, rt.clock,
                             settings.metrics_collection_interval, policy_of(settings))
    log.info("collect target=%s slot=%s status=%s up=%s", target_id, slot, outcome.status,
             outcome.up)
    return outcome.status


@app.task(name="health.dispatch")
def dispatch_health() -> int:
    """Send one health-check task per enabled target for the current slot."""
    rt = runtime()
    interval = settings.redis_health_check_interval
    with recorded_run(rt.sessions, "health.dispatch", rt.clock):
        slot = slot_for(rt.clock(), interval)
        ids = enabled_target_ids(rt.sessions)
        for target_id in ids:
            check_health.apply_async((target_id, slot), expires=interval)
    return len(ids)


@app.task(name="health.target")
def check_health(target_id: int, slot: int) -> str | None:
    """Run and store the health checks of one target."""
    rt = runtime()
    report = health_target(rt.sessions, clients(), target_id, slot, rt.clock, settings)
    status = report.status if report else None
    log.info("health target=%s slot=%s status=%s", target_id, slot, status)
    return status


@app.task(name="maintenance.heartbeat")
def heartbeat() -> None:
    """Record that a worker is consuming tasks."""
    rt = runtime()
    beat_heartbeat(rt.sessions, "worker", rt.clock())
