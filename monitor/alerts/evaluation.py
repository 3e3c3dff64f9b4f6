"""Evaluate every rule on every target over the stored history and apply the transitions."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.alerts.lifecycle import OPEN, RESOLVED, Snapshot, Step, Timing, evaluate
from monitor.alerts.notifications import plan_notifications
from monitor.alerts.rules import Condition, default_summary, render_summary
from monitor.alerts.silences import active_silences
from monitor.alerts.values import Context, read_value
from monitor.db import Alert, AlertEvent, AlertRule, SlowlogEntry, Target
from monitor.exposition import latest_health_results
from monitor.history import TargetView, latest_views
from monitor.settings import Settings

WINDOW = timedelta(minutes=5)
EVALUATOR = "evaluator"


@dataclass(frozen=True)
class Outcome:
    evaluated: int
    transitions: int
    notifications: list[int]


def _contexts(session: Session, now: datetime, settings: Settings) -> dict[int, tuple[
        TargetView, Context]]:
    views = latest_views(session, now, WINDOW)
    health = latest_health_results(session)
    slow = _slow_counts(session, now, settings.slow_command_threshold)
    stale_after = 3 * settings.metrics_collection_interval
    return {v.target.id: (v, _context(v, health.get(v.target.id), slow.get(v.target.id, 0),
                                      now, stale_after)) for v in views}


def _slow_counts(session: Session, now: datetime, threshold_ms: float) -> dict[int, int]:
    query = (select(SlowlogEntry.target_id, func.count())
             .where(SlowlogEntry.started_at >= now - WINDOW,
                    SlowlogEntry.duration_us >= threshold_ms * 1000)
             .group_by(SlowlogEntry.target_id))
    return {target_id: int(count) for target_id, count in session.execute(query).all()}


def _context(view: TargetView, health: object, slow: int, now: datetime,
             stale_after: float) -> Context:
    latest = view.latest
    age = (now - latest.collected_at).total_seconds() if latest else None
    start = view.window_start
    usable = latest is not None and latest.up
    return Context(
        sampled=latest is not None, up=latest.up if latest else None,
        stale=age is None or age > stale_after, sample_age_seconds=age,
        latest=(latest.data or {}) if usable and latest else {},
        window_start=start.data if start is not None and usable else None,
        window_seconds=(latest.collected_at - start.collected_at).total_seconds()
        if usable and latest and start is not None else None,
        health={c["check"]: c for c in getattr(health, "checks", [])},
        slow_commands=slow)


def applies(rule: AlertRule, target: Target) -> bool:
    """Tell whether a rule's scope covers a target."""
    return (rule.target_id in (None, target.id)) and (rule.project_id in (None, target.project_id))


def alert_labels(rule: AlertRule, project: str, target: Target) -> dict[str, str]:
    """The identity of an alert, as Alertmanager and silences see it."""
    return {**rule.labels, "alertname": rule.name, "rule": rule.name, "severity": rule.severity,
            "project": project, "target": target.name}


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's own fingerprint of a label set (FNV-1a 64 over sorted pairs), in hex."""
    value = 0xCBF29CE484222325
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def evaluate_all(session: Session, settings: Settings, now: datetime) -> Outcome:
    """Evaluate every enabled rule on every enabled target; return what changed."""
    contexts = _contexts(session, now, settings)
    rules = list(session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True))
                                 .order_by(AlertRule.id)))
    silences = active_silences(session, now)
    evaluated = transitions = 0
    planned: list[int] = []
    for view, ctx in contexts.values():
        for rule in rules:
            if not applies(rule, view.target):
                continue
            evaluated += 1
            alert, changed = _evaluate_pair(session, rule, view, ctx, now)
            transitions += changed
            if alert is not None:
                planned += plan_notifications(session, alert, silences, now)
    return Outcome(evaluated, transitions, planned)


def _open_alert(session: Session, rule_id: int, target_id: int) -> Alert | None:
    return session.scalar(select(Alert).where(
        Alert.rule_id == rule_id, Alert.target_id == target_id, Alert.status.in_(OPEN),
    ).with_for_update())


def _evaluate_pair(session: Session, rule: AlertRule, view: TargetView, ctx: Context,
                   now: datetime) -> tuple[Alert | None, int]:
    alert = _open_alert(session, rule.id, view.target.id)
    value, stale = read_value(rule.metric, ctx)
    snapshot = None if alert is None else Snapshot(alert.status, alert.started_at,
                                                   alert.cleared_at, alert.ack_expires_at)
    timing = Timing(Condition(rule.operator, rule.threshold, rule.clear_threshold),
                    rule.for_seconds, rule.keep_firing_seconds)
    step = evaluate(snapshot, value, stale, timing, now)
    if step.create:
        return _create(session, rule, view, step, value, now), len(step.events)
    if alert is None:
        return None, 0
    _apply(session, alert, step, value, now)
    return alert, len(step.events)


def _summary(rule: AlertRule, view: TargetView, value: float | None) -> str:
    template = rule.summary or default_summary(rule.operator)
    return render_summary(template, value=value if value is not None else "n/a",
                          threshold=rule.threshold, target=view.target.name,
                          project=view.project, rule=rule.name, metric=rule.metric,
                          severity=rule.severity)


def _create(session: Session, rule: AlertRule, view: TargetView, step: Step,
            value: float | None, now: datetime) -> Alert | None:
    labels = alert_labels(rule, view.project, view.target)
    alert = Alert(rule_id=rule.id, target_id=view.target.id, status=step.status,
                  severity=rule.severity, value=value, summary=_summary(rule, view, value),
                  labels=labels, fingerprint=fingerprint(labels), started_at=now,
                  activated_at=now if step.status == "active" else None,
                  last_evaluated_at=now, evaluation=step.evaluation)
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        return None  # another evaluator opened it first: one open alert per rule and target
    for kind in step.events:
        session.add(AlertEvent(alert_id=alert.id, at=now, kind=kind, actor=EVALUATOR,
                               value=value))
    return alert


def _apply(session: Session, alert: Alert, step: Step, value: float | None,
           now: datetime) -> None:
    alert.last_evaluated_at, alert.evaluation = now, step.evaluation
    alert.cleared_at = step.cleared_at
    if value is not None:
        alert.value = value
    if step.status != alert.status:
        _move(alert, step.status or alert.status, now)
    for kind in step.events:
        session.add(AlertEvent(alert_id=alert.id, at=now, kind=kind, actor=EVALUATOR,
                               value=value))


def _move(alert: Alert, status: str, now: datetime, actor: str = EVALUATOR) -> None:
    """Change an alert's status and the timestamps that go with it."""
    if status == "active" and alert.activated_at is None:
        alert.activated_at = now
    if status == "active" and alert.status == "acknowledged":
        alert.ack_expires_at = None
    if status == RESOLVED:
        alert.resolved_at, alert.resolved_by = now, actor
    alert.status = status
