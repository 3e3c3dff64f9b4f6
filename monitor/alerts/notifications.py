"""Plan notification rows for alerts and deliver them, each claimed before it is sent."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.lifecycle import ACKNOWLEDGED, ACTIVE, RESOLVED
from monitor.alerts.silences import silenced_by
from monitor.db import (
    Alert,
    AlertEvent,
    Notification,
    NotificationChannel,
    Silence,
    Target,
    insert_for,
    transaction,
)

MAX_ATTEMPTS = 8
BACKOFF_CAP_SECONDS = 300.0
LEASE_SECONDS = 60.0
# Alertmanager forgets a firing alert it has not heard of for resolve_timeout (5 m): re-send often.
ALERTMANAGER_RESEND_SECONDS = 60.0


def _channels_for(session: Session, alert: Alert) -> list[NotificationChannel]:
    project_id = session.scalar(select(Target.project_id).where(Target.id == alert.target_id))
    return list(session.scalars(select(NotificationChannel).where(
        NotificationChannel.enabled.is_(True),
        or_(NotificationChannel.project_id.is_(None),
            NotificationChannel.project_id == project_id)).order_by(NotificationChannel.id)))


def _last_firing(session: Session, alert_id: int, channel_id: int) -> Notification | None:
    return session.scalar(select(Notification).where(
        Notification.alert_id == alert_id, Notification.channel_id == channel_id,
        Notification.kind == "firing").order_by(Notification.sequence.desc()).limit(1))


def _repeat_seconds(channel: NotificationChannel) -> float:
    if channel.kind == "alertmanager":
        return min(channel.repeat_interval_seconds, ALERTMANAGER_RESEND_SECONDS)
    return channel.repeat_interval_seconds


def _wanted(alert: Alert, channel: NotificationChannel, last: Notification | None,
            silenced: bool, now: datetime) -> tuple[str, int] | None:
    """Return (kind, sequence) of the notification owed to a channel now, if any."""
    if alert.status == RESOLVED:
        return ("resolved", 0) if last is not None and channel.send_resolved else None
    if silenced or alert.status not in (ACTIVE, ACKNOWLEDGED):
        return None
    # Acknowledged means a person is on it: humans get no more, Alertmanager must keep hearing.
    if alert.status == ACKNOWLEDGED and channel.kind != "alertmanager":
        return None
    if last is None:
        return "firing", 0
    if now - last.created_at >= timedelta(seconds=_repeat_seconds(channel)):
        return "firing", last.sequence + 1
    return None


def plan_notifications(session: Session, alert: Alert, silences: list[Silence],
                       now: datetime) -> list[int]:
    """Create the notification rows an alert is owed now; duplicates are ignored by key."""
    silenced = silenced_by(silences, alert.labels) is not None
    created = []
    for channel in _channels_for(session, alert):
        wanted = _wanted(alert, channel, _last_firing(session, alert.id, channel.id), silenced,
                         now)
        if wanted is None:
            continue
        stmt = insert_for(session, Notification).values(
            alert_id=alert.id, channel_id=channel.id, kind=wanted[0], sequence=wanted[1],
            status="pending", attempts=0, created_at=now, next_attempt_at=now,
        ).on_conflict_do_nothing(
            index_elements=["alert_id", "channel_id", "kind", "sequence"]
        ).returning(Notification.__table__.c.id)
        new_id = session.execute(stmt).scalar_one_or_none()
        if new_id is not None:
            created.append(int(new_id))
    return created


def due_notifications(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Return ids of notifications waiting to be sent (new, retried, or abandoned mid-send)."""
    query = select(Notification.id).where(or_(
        (Notification.status == "pending") & (Notification.next_attempt_at <= now),
        (Notification.status == "sending") & (Notification.claimed_until < now),
    )).order_by(Notification.id).limit(limit)
    return list(session.scalars(query))


def claim(session: Session, notification_id: int, now: datetime) -> bool:
    """Claim one notification with a conditional UPDATE; False if another worker has it."""
    result = session.execute(update(Notification).where(
        Notification.id == notification_id,
        or_((Notification.status == "pending") & (Notification.next_attempt_at <= now),
            (Notification.status == "sending") & (Notification.claimed_until < now)),
    ).values(status="sending", claimed_until=now + timedelta(seconds=LEASE_SECONDS),
             attempts=Notification.attempts + 1))
    return bool(result.rowcount)


def backoff(attempts: int, base: float) -> float:
    """Exponential backoff in seconds after `attempts` failed tries."""
    return min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempts - 1))


def deliver(sessions: sessionmaker[Session], notification_id: int, now: Callable[[], datetime],
            external_url: str, retry_base: float) -> tuple[str, float | None]:
    """Claim and send one notification; return (status, retry_in_seconds)."""
    from monitor.alerts.channels import DeliveryError, send

    with transaction(sessions) as session:
        if not claim(session, notification_id, now()):
            return "claimed", None
        note = session.get(Notification, notification_id)
        assert note is not None
        channel = session.get(NotificationChannel, note.channel_id)
        alert = session.get(Alert, note.alert_id)
        assert channel is not None and alert is not None
        kind, config, name = channel.kind, dict(channel.config), channel.name
        message = alert_message(alert, note.kind, external_url)
    try:
        send(kind, config, [message], receiver=name, external_url=external_url)
    except DeliveryError as exc:
        return _failed(sessions, notification_id, now(), str(exc), exc.retryable, retry_base)
    with transaction(sessions) as session:
        session.execute(update(Notification).where(Notification.id == notification_id).values(
            status="sent", sent_at=now(), error=None, claimed_until=None))
        session.add(AlertEvent(alert_id=message.alert_id, at=now(), kind=f"notified_{note.kind}",
                               actor=f"channel:{name}"))
    return "sent", None


def _failed(sessions: sessionmaker[Session], notification_id: int, now: datetime, error: str,
            retryable: bool, retry_base: float) -> tuple[str, float | None]:
    with transaction(sessions) as session:
        note = session.get(Notification, notification_id)
        assert note is not None
        if retryable and note.attempts < MAX_ATTEMPTS:
            delay = backoff(note.attempts, retry_base)
            note.status, note.next_attempt_at = "pending", now + timedelta(seconds=delay)
            note.error, note.claimed_until = error[:500], None
            return "retry", delay
        note.status, note.error, note.claimed_until = "failed", error[:500], None
        return "failed", None


def alert_message(alert: Alert, kind: str, external_url: str) -> Any:
    """Build what a channel sends about an alert."""
    from monitor.alerts.channels import AlertMessage

    return AlertMessage(
        alert_id=alert.id, fingerprint=alert.fingerprint,
        status="resolved" if kind == "resolved" else "firing",
        labels=dict(alert.labels), annotations={"summary": alert.summary,
                                                "description": alert.summary},
        starts_at=alert.activated_at or alert.started_at,
        ends_at=alert.resolved_at if kind == "resolved" else None,
        generator_url=f"{external_url}/monitoring/redis/alerts/{alert.id}")


def delivery_counts(session: Session) -> dict[str, int]:
    """Count notifications by delivery status."""
    rows = session.execute(select(Notification.status, func.count()).group_by(
        Notification.status)).all()
    return {status: int(count) for status, count in rows}
