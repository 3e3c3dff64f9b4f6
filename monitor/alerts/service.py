"""Alert use cases for the API, the CLI and the Python facade: actions, queries, rules, channels."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.alerts.evaluation import _move
from monitor.alerts.lifecycle import ACTIONS, OPEN, Duration, check_action, parse_duration
from monitor.alerts.notifications import plan_notifications
from monitor.alerts.rules import (
    RuleInput,
    RulePatch,
    check_clear_threshold,
    default_summary,
    rule_view,
)
from monitor.alerts.silences import SilenceInput, active_silences, create_silence, silence_end
from monitor.db import (
    Alert,
    AlertEvent,
    AlertRule,
    NotificationChannel,
    Project,
    Target,
    is_unique_violation,
)


class AlertError(ValueError):
    """A request that cannot be carried out; `code` picks the HTTP status."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.details = code, details or {}


class ActionInput(BaseModel):
    """The body of POST /alerts/{id}/action."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as declared

    action: Literal["acknowledge", "unacknowledge", "resolve", "silence"]
    user: str = Field(min_length=1, max_length=200)
    comment: str | None = None
    duration: Duration | None = None


# --- actions -----------------------------------------------------------------------------


def act(session: Session, alert_id: int, data: ActionInput,
        now: datetime) -> tuple[Alert, list[int]]:
    """Apply a person's action; return the alert and any notification rows it created."""
    if data.action not in ACTIONS:
        raise AlertError("invalid", f"unknown action {data.action!r}; valid: {', '.join(ACTIONS)}",
                         {"valid_actions": list(ACTIONS)})
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise AlertError("not_found", f"no alert {alert_id}")
    duration = _duration(data)
    try:
        status = check_action(alert.status, data.action)
    except ValueError as exc:
        raise AlertError("conflict", str(exc), {"status": alert.status}) from None
    getattr(_Actions, data.action)(session, alert, data, duration, now)
    if status != alert.status:
        _move(alert, status, now, actor=data.user)
    session.add(AlertEvent(alert_id=alert.id, at=now, kind=_event_kind(data.action),
                           actor=data.user, value=alert.value, comment=data.comment))
    session.flush()
    return alert, plan_notifications(session, alert, active_silences(session, now), now)


def _event_kind(action: str) -> str:
    return {"acknowledge": "acknowledged", "unacknowledge": "unacknowledged",
            "resolve": "resolved", "silence": "silenced"}[action]


def _duration(data: ActionInput) -> timedelta | None:
    if data.duration is None:
        if data.action == "silence":
            raise AlertError("invalid", "silence needs a duration, like 1h")
        return None
    if data.action not in ("acknowledge", "silence"):
        raise AlertError("invalid", f"{data.action} takes no duration")
    try:
        return parse_duration(data.duration)
    except ValueError as exc:
        raise AlertError("invalid", str(exc)) from None


class _Actions:
    @staticmethod
    def acknowledge(session: Session, alert: Alert, data: ActionInput,
                    duration: timedelta | None, now: datetime) -> None:
        alert.acknowledged_at, alert.acknowledged_by = now, data.user
        alert.ack_comment = data.comment
        alert.ack_expires_at = now + duration if duration else None

    @staticmethod
    def unacknowledge(session: Session, alert: Alert, data: ActionInput,
                      duration: timedelta | None, now: datetime) -> None:
        alert.ack_expires_at = None

    @staticmethod
    def resolve(session: Session, alert: Alert, data: ActionInput,
                duration: timedelta | None, now: datetime) -> None:
        alert.cleared_at = alert.cleared_at or now

    @staticmethod
    def silence(session: Session, alert: Alert, data: ActionInput,
                duration: timedelta | None, now: datetime) -> None:
        assert duration is not None
        matchers = {k: alert.labels[k] for k in ("project", "target", "rule")}
        create_silence(session, SilenceInput(
            matchers=matchers, created_by=data.user,
            comment=data.comment or f"silenced from alert {alert.id}",
            duration=duration.total_seconds()), now + duration, now)


# --- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    status: str | None = None
    severity: str | None = None
    project_id: int | None = None
    target: str | None = None
    rule: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: int | None = None


def list_alerts(session: Session, f: AlertFilter) -> tuple[list[dict[str, Any]], int | None]:
    """Return one page of alerts, newest first, and the cursor of the next page."""
    query = (select(Alert, Target.name, Project.name).join(Target, Target.id == Alert.target_id)
             .join(Project, Project.id == Target.project_id).order_by(Alert.id.desc()))
    conditions = [
        (f.status, lambda: Alert.status == f.status),
        (f.severity, lambda: Alert.severity == f.severity),
        (f.project_id, lambda: Target.project_id == f.project_id),
        (f.target, lambda: Target.name == f.target),
        (f.rule, lambda: Alert.labels["rule"].as_string() == f.rule),
        (f.since, lambda: Alert.started_at >= f.since),
        (f.until, lambda: Alert.started_at < f.until),
        (f.cursor, lambda: Alert.id < f.cursor),
    ]
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition())
    rows = session.execute(query.limit(f.limit + 1)).all()
    page = [alert_view(a, t, p) for a, t, p in rows[: f.limit]]
    return page, (page[-1]["id"] if len(rows) > f.limit else None)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def alert_view(alert: Alert, target: str, project: str) -> dict[str, Any]:
    """Describe an alert for the API."""
    return {
        "id": alert.id, "rule_id": alert.rule_id, "rule": alert.labels.get("rule"),
        "target_id": alert.target_id, "target": target, "project": project,
        "status": alert.status, "severity": alert.severity, "value": alert.value,
        "summary": alert.summary, "labels": alert.labels, "fingerprint": alert.fingerprint,
        "evaluation": alert.evaluation, "started_at": _iso(alert.started_at),
        "activated_at": _iso(alert.activated_at), "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by, "ack_comment": alert.ack_comment,
        "ack_expires_at": _iso(alert.ack_expires_at), "resolved_at": _iso(alert.resolved_at),
        "resolved_by": alert.resolved_by, "last_evaluated_at": _iso(alert.last_evaluated_at),
    }


def alert_detail(session: Session, alert_id: int) -> dict[str, Any]:
    """Return one alert with its events."""
    row = session.execute(select(Alert, Target.name, Project.name)
                          .join(Target, Target.id == Alert.target_id)
                          .join(Project, Project.id == Target.project_id)
                          .where(Alert.id == alert_id)).first()
    if row is None:
        raise AlertError("not_found", f"no alert {alert_id}")
    events = session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id)
                             .order_by(AlertEvent.at, AlertEvent.id))
    return alert_view(*row) | {"events": [
        {"at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, "value": e.value,
         "comment": e.comment} for e in events]}


def alert_summary(session: Session, now: datetime, project_id: int | None = None
                  ) -> dict[str, Any]:
    """Count open alerts by status, severity and target; mean times to ack and resolve (24 h)."""
    since = now - timedelta(hours=24)
    base = select(Alert).join(Target, Target.id == Alert.target_id)
    if project_id is not None:
        base = base.where(Target.project_id == project_id)
    open_alerts = list(session.scalars(base.where(Alert.status.in_(OPEN))))
    recent = list(session.scalars(base.where(Alert.started_at >= since)))
    targets = dict(session.execute(select(Target.id, Target.name)).all())
    return {
        "generated_at": now.isoformat(), "open": len(open_alerts),
        "by_status": _count(a.status for a in open_alerts),
        "by_severity": _count(a.severity for a in open_alerts),
        "by_target": _count(targets.get(a.target_id, "?") for a in open_alerts),
        "last_24h": {"raised": sum(1 for a in recent if a.activated_at),
                     "resolved": sum(1 for a in recent if a.resolved_at and a.activated_at),
                     "mean_time_to_acknowledge_seconds": _mean_to_ack(session, recent),
                     "mean_time_to_resolve_seconds": _mean(
                         (a.resolved_at - a.activated_at).total_seconds() for a in recent
                         if a.resolved_at and a.activated_at)},
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _mean(values: Any) -> float | None:
    items = list(values)
    return round(sum(items) / len(items), 3) if items else None


def _mean_to_ack(session: Session, alerts: list[Alert]) -> float | None:
    activated = {a.id: a.activated_at for a in alerts if a.activated_at}
    if not activated:
        return None
    first_acks = session.execute(select(AlertEvent.alert_id, func.min(AlertEvent.at)).where(
        AlertEvent.alert_id.in_(activated), AlertEvent.kind == "acknowledged",
    ).group_by(AlertEvent.alert_id)).all()
    return _mean((at - activated[i]).total_seconds() for i, at in first_acks)


# --- rules -------------------------------------------------------------------------------


def get_rule(session: Session, rule_id: int) -> AlertRule:
    """Return a rule or raise not_found."""
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise AlertError("not_found", f"no rule {rule_id}")
    return rule


def _check_scope(session: Session, project_id: int | None, target_id: int | None) -> None:
    if project_id is not None and session.get(Project, project_id) is None:
        raise AlertError("invalid", f"no project {project_id}")
    if target_id is not None and session.get(Target, target_id) is None:
        raise AlertError("invalid", f"no target {target_id}")


def create_rule(session: Session, data: RuleInput, now: datetime) -> dict[str, Any]:
    """Store a new rule; a taken name is a conflict."""
    _check_scope(session, data.project_id, data.target_id)
    values = data.model_dump()
    values["summary"] = values["summary"] or default_summary(data.operator)
    rule = AlertRule(**values, builtin=False, customized=False, created_at=now, updated_at=now)
    _flush_unique(session, rule, data.name)
    return rule_view(rule)


def update_rule(session: Session, rule: AlertRule, patch: RulePatch, now: datetime
                ) -> dict[str, Any]:
    """Apply a partial change, checking the result as a whole."""
    changes = patch.model_dump(exclude_unset=True)
    if "summary" in changes and changes["summary"] is None:
        changes["summary"] = default_summary(changes.get("operator", rule.operator))
    _check_scope(session, changes.get("project_id"), changes.get("target_id"))
    merged = {**rule_view(rule), **changes}
    try:
        check_clear_threshold(merged["operator"], merged["threshold"], merged["clear_threshold"])
    except ValueError as exc:
        raise AlertError("invalid", str(exc)) from None
    for key, value in changes.items():
        setattr(rule, key, value)
    rule.updated_at, rule.customized = now, rule.builtin or rule.customized
    _flush_unique(session, rule, rule.name)
    return rule_view(rule)


def _flush_unique(session: Session, row: Any, name: str) -> None:
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise AlertError("conflict", f"the name {name!r} is taken") from None


def list_rules(session: Session) -> list[dict[str, Any]]:
    """Return every rule."""
    return [rule_view(r) for r in session.scalars(select(AlertRule).order_by(AlertRule.id))]


# --- channels -----------------------------------------------------------------------------


class ChannelInput(BaseModel):
    """A notification channel as the API accepts it."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as declared

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$")
    kind: Literal["webhook", "slack", "email", "alertmanager", "log"]
    config: dict[str, Any] = Field(default_factory=dict)
    project_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    send_resolved: bool = True
    repeat_interval: Duration = "4h"
    enabled: bool = True


def create_channel(session: Session, data: ChannelInput, now: datetime) -> dict[str, Any]:
    """Validate and store a channel."""
    from monitor.alerts.channels import KINDS, validate_config

    if data.kind not in KINDS:
        raise AlertError("invalid", f"unknown channel kind {data.kind!r}; valid: "
                                    f"{', '.join(KINDS)}")
    try:
        config = validate_config(data.kind, data.config)
        repeat = parse_duration(data.repeat_interval).total_seconds()
    except ValueError as exc:
        raise AlertError("invalid", str(exc)) from None
    _check_scope(session, data.project_id, None)
    channel = NotificationChannel(name=data.name, kind=data.kind, config=config,
                                  project_id=data.project_id, send_resolved=data.send_resolved,
                                  repeat_interval_seconds=repeat, enabled=data.enabled,
                                  created_at=now)
    _flush_unique(session, channel, data.name)
    return channel_view(channel)


def channel_view(channel: NotificationChannel) -> dict[str, Any]:
    """Describe a channel; secrets in its config are masked."""
    from monitor.alerts.channels import public_config

    return {"id": channel.id, "name": channel.name, "kind": channel.kind,
            "project_id": channel.project_id, "config": public_config(channel.kind,
                                                                      channel.config),
            "send_resolved": channel.send_resolved,
            "repeat_interval_seconds": channel.repeat_interval_seconds,
            "enabled": channel.enabled, "created_at": channel.created_at.isoformat()}


def new_silence(session: Session, data: SilenceInput, now: datetime) -> Any:
    """Store a silence from API input."""
    try:
        end = silence_end(data, now, parse_duration)
    except ValueError as exc:
        raise AlertError("invalid", str(exc)) from None
    return create_silence(session, data, end, now)
