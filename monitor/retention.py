"""Retention: raw history older than RETENTION_RAW_DAYS is deleted, in bounded batches."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.db import (
    Alert,
    HealthResult,
    Notification,
    Sample,
    SlowlogEntry,
    TargetState,
    transaction,
)

BATCH = 5000


@dataclass(frozen=True)
class Pruned:
    samples: int = 0
    health_results: int = 0
    slowlog_entries: int = 0
    notifications: int = 0


def _batch(session: Session, model: Any, time_column: Any, cutoff: datetime,
           keep: Any = None) -> int:
    """Delete up to BATCH rows older than the cutoff, oldest first; return how many."""
    ids = select(model.id).where(time_column < cutoff)
    if keep is not None:
        ids = ids.where(model.id.not_in(keep))
    chosen = list(session.scalars(ids.order_by(model.id).limit(BATCH)))
    if chosen:
        session.execute(delete(model).where(model.id.in_(chosen)))
    return len(chosen)


def prune(sessions: sessionmaker[Session], now: datetime, raw_days: int,
          max_batches: int = 20) -> Pruned:
    """Delete raw rows older than `raw_days`, never a target's latest sample."""
    cutoff = now - timedelta(days=raw_days)
    totals = {"samples": 0, "health_results": 0, "slowlog_entries": 0, "notifications": 0}
    latest = select(TargetState.last_sample_id).where(TargetState.last_sample_id.is_not(None))
    # An open alert's notifications decide its repeats: only a resolved alert's go.
    still_open = select(Notification.id).join(Alert, Alert.id == Notification.alert_id).where(
        Alert.status != "resolved")
    plan = (("samples", Sample, Sample.collected_at, latest),
            ("health_results", HealthResult, HealthResult.checked_at, None),
            ("slowlog_entries", SlowlogEntry, SlowlogEntry.started_at, None),
            ("notifications", Notification, Notification.created_at, still_open))
    for name, model, column, keep in plan:
        for _ in range(max_batches):
            with transaction(sessions) as session:
                removed = _batch(session, model, column, cutoff, keep)
            totals[name] += removed
            if removed < BATCH:
                break
    return Pruned(**totals)
