"""Thin tasks: load ids, call a monitor function, log."""
from __future__ import annotations

import logging
from typing import Any

from monitor.alerts.notifications import deliver, due_notifications
from monitor.health.service import policy_of
from monitor.history import slot_for
from monitor.jobs import (
    beat_heartbeat,
    claim_lease,
    collect_target,
    enabled_target_ids,
    evaluate_alerts,
    health_target,
    recorded_run,
)
from monitor.retention import prune
from workers.celery_app import PRUNE_EVERY, app, settings
from workers.context import clients, runtime

log = logging.getLogger("redismon.tasks")


def _fan_out(name: str, interval: float, task: Any) -> int:
    """Send `task(target_id, slot)` for every enabled target, expiring after one interval."""
    rt = runtime()
    with recorded_run(rt.sessions, name, rt.clock):
        slot = slot_for(rt.clock(), interval)
        ids = enabled_target_ids(rt.sessions)
        for target_id in ids:
            task.apply_async((target_id, slot), expires=interval)
    return len(ids)


@app.task(name="collect.dispatch")
def dispatch_collection() -> int:
    """Send one collection task per enabled target for the current slot."""
    return _fan_out("collect.dispatch", settings.metrics_collection_interval, collect)


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
    return _fan_out("health.dispatch", settings.redis_health_check_interval, check_health)


@app.task(name="health.target")
def check_health(target_id: int, slot: int) -> str | None:
    """Run and store the health checks of one target."""
    rt = runtime()
    report = health_target(rt.sessions, clients(), target_id, slot, rt.clock, settings)
    status = report.status if report else None
    log.info("health target=%s slot=%s status=%s", target_id, slot, status)
    return status


@app.task(name="maintenance.prune")
def prune_history() -> dict[str, int]:
    """Delete raw history older than RETENTION_RAW_DAYS (one beat's run at a time)."""
    rt = runtime()
    if not claim_lease(rt.sessions, "maintenance.prune", rt.clock(), PRUNE_EVERY / 2):
        return {}
    with recorded_run(rt.sessions, "maintenance.prune", rt.clock):
        pruned = prune(rt.sessions, rt.clock(), settings.retention_raw_days)
    log.info("prune %s", pruned)
    return dict(vars(pruned))


@app.task(name="maintenance.heartbeat")
def heartbeat() -> None:
    """Record that a worker is consuming tasks."""
    rt = runtime()
    beat_heartbeat(rt.sessions, "worker", rt.clock())


@app.task(name="alerts.evaluate")
def evaluate() -> int:
    """Evaluate every rule and send the notifications it owes."""
    rt = runtime()
    with recorded_run(rt.sessions, "alerts.evaluate", rt.clock):
        outcome = evaluate_alerts(rt.sessions, settings, rt.clock)
    if outcome is None:
        return 0
    for notification_id in outcome.notifications:
        send_notification.apply_async((notification_id,))
    return outcome.transitions


@app.task(name="notify.send")
def send_notification(notification_id: int) -> str:
    """Claim one notification and send it; a retryable failure schedules a retry."""
    rt = runtime()
    status, retry_in = deliver(rt.sessions, notification_id, rt.clock, external_url(),
                               settings.redis_retry_delay)
    log.info("notify id=%s status=%s retry_in=%s", notification_id, status, retry_in)
    if retry_in is not None:
        send_notification.apply_async((notification_id,), countdown=retry_in)
    return status


@app.task(name="notify.dispatch")
def dispatch_notifications() -> int:
    """Send tasks for notifications that are due (retries, or tasks lost with a worker)."""
    rt = runtime()
    with recorded_run(rt.sessions, "notify.dispatch", rt.clock):
        with rt.sessions() as session:
            ids = due_notifications(session, rt.clock())
        for notification_id in ids:
            send_notification.apply_async((notification_id,))
    return len(ids)


def external_url() -> str:
    """The base URL people and receivers use to reach the API."""
    return f"http://{settings.web_host}:{settings.web_port}"
