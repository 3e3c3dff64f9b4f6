"""A beat scheduler that records its own liveness in the database."""
from __future__ import annotations

import time
from typing import Any

from celery.beat import PersistentScheduler

from monitor.jobs import beat_heartbeat
from workers.celery_app import HEARTBEAT_SECONDS
from workers.context import runtime


class HeartbeatScheduler(PersistentScheduler):
    """PersistentScheduler that writes a `beat` heartbeat at most every HEARTBEAT_SECONDS."""

    _last_beat = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_SECONDS:
            self._last_beat = now
            try:
                rt = runtime()
                beat_heartbeat(rt.sessions, "beat", rt.clock())
            except Exception:  # a database hiccup must not stop scheduling
                self.logger.exception("beat heartbeat failed")
        return min(super().tick(*args, **kwargs), HEARTBEAT_SECONDS)
