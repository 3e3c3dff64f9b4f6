"""Queue backlog read from the Celery broker with kombu (no Celery import)."""
from __future__ import annotations

from typing import Any

from kombu import Connection
from kombu.exceptions import ChannelError, OperationalError

QUEUES = ("collect", "health", "alerts", "notify", "maintenance")


def queue_backlog(broker_url: str, queues: tuple[str, ...] = QUEUES,
                  timeout: float = 2.0) -> dict[str, Any]:
    """Return {queue: waiting messages}, or an error string when the broker cannot be read."""
    try:
        with Connection(broker_url, connect_timeout=timeout) as conn:
            channel = conn.default_channel
            return {name: _size(channel, name) for name in queues}
    except (OperationalError, OSError, ConnectionError) as exc:
        return {"error": f"broker unavailable: {type(exc).__name__}"}


def _size(channel: Any, name: str) -> int:
    try:
        return int(channel.queue_declare(queue=name, passive=True).message_count)
    except ChannelError:  # a queue never declared holds nothing
        return 0
