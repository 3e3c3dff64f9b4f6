"""The Celery app: configuration, queues, routes and the beat schedule."""
from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from monitor.settings import load_settings

QUEUES = ("collect", "health", "alerts", "notify", "maintenance")
HEARTBEAT_SECONDS = 10.0

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
        "collect-dispatch": {
            "task": "collect.dispatch",
            "schedule": settings.metrics_collection_interval,
            "options": {"expires": settings.metrics_collection_interval},
        },
        "health-dispatch": {
            "task": "health.dispatch",
            "schedule": settings.redis_health_check_interval,
            "options": {"expires": settings.redis_health_check_interval},
        },
        "alerts-evaluate": {
            "task": "alerts.evaluate",
            "schedule": settings.alert_evaluation_interval,
            "options": {"expires": settings.alert_evaluation_interval},
        },
        "notify-dispatch": {
            "task": "notify.dispatch",
            "schedule": settings.alert_evaluation_interval,
            "options": {"expires": settings.alert_evaluation_interval},
        },
        "worker-heartbeat": {
            "task": "maintenance.heartbeat",
            "schedule": HEARTBEAT_SECONDS,
            "options": {"expires": HEARTBEAT_SECONDS},
        },
    },
    timezone="UTC",
)
