"""The Celery app: configuration, queues, routes and the beat schedule."""
from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from monitor.settings import load_settings

QUEUES = ("collect", "health", "alerts", "notify", "maintenance")
HEARTBEAT_SECONDS = 10.0
PRUNE_EVERY = 3600.0

settings = load_settings()

app = Celery("redismon", broker=settings.broker_url, include=["workers.tasks"])
app.conf.update(
    task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
    task_default_queue="maintenance",
    task_routes={f"{name}.*": {"queue": name} for name in QUEUES},
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    beat_scheduler="workers.beat:HeartbeatScheduler",
    beat_schedule={
        name: {"task": task, "schedule": every, "options": {"expires": every}}
        for name, task, every in (
            ("collect-dispatch", "collect.dispatch", settings.metrics_collection_interval),
            ("health-dispatch", "health.dispatch", settings.redis_health_check_interval),
            ("alerts-evaluate", "alerts.evaluate", settings.alert_evaluation_interval),
            ("notify-dispatch", "notify.dispatch", settings.alert_evaluation_interval),
            ("worker-heartbeat", "maintenance.heartbeat", HEARTBEAT_SECONDS),
            ("prune-history", "maintenance.prune", PRUNE_EVERY),
        )
    },
    timezone="UTC",
)
