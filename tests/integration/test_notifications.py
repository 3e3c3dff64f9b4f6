"""Notification rows: planned once, claimed once, retried with backoff, resolved once."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from monitor.alerts.notifications import deliver, due_notifications, plan_notifications
from monitor.alerts.service import ActionInput, ChannelInput, act, create_channel
from monitor.db import Alert, AlertRule, Notification, transaction
from monitor.runtime import Runtime, bootstrap
from monitor.targets import add_target
from tests.support.clock import ManualClock
from tests.support.receivers import HTTPReceiver

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def receiver() -> Iterator[HTTPReceiver]:
    with HTTPReceiver() as hook:
        yield hook


@pytest.fixture(scope="module")
def scene(pg_runtime: Runtime, receiver: HTTPReceiver) -> dict:
    bootstrap(pg_runtime)
    with transaction(pg_runtime.sessions) as session:
        target = add_target(session, project="notify", name="cache", url="redis://h:1", now=NOW)
        channel = create_channel(session, ChannelInput(
            name="hook", kind="webhook", config={"url": receiver.url + "/hook"},
            project_id=target.project_id, repeat_interval="10m"), NOW)
        rule = session.scalar(select(AlertRule).where(AlertRule.name == "redis_memory_critical"))
        assert rule is not None
        return {"target_id": target.id, "channel_id": channel["id"], "rule_id": rule.id}


def _new_alert(rt: Runtime, scene: dict, status: str = "active") -> int:
    labels = {"alertname": "redis_memory_critical", "rule": "redis_memory_critical",
              "severity": "critical", "project": "notify", "target": "cache"}
    with transaction(rt.sessions) as session:
        for old in session.scalars(select(Alert).where(Alert.rule_id == scene["rule_id"],
                                                       Alert.status != "resolved")):
            old.status = "resolved"
        session.flush()
        alert = Alert(rule_id=scene["rule_id"], target_id=scene["target_id"], status=status,
                      severity="critical", value=95.0, summary="Memory at 95 %", labels=labels,
                      fingerprint="0" * 16, started_at=NOW, activated_at=NOW,
                      last_evaluated_at=NOW, evaluation="firing")
        session.add(alert)
        session.flush()
        return alert.id


def _plan(rt: Runtime, alert_id: int, now: datetime) -> list[int]:
    with transaction(rt.sessions) as session:
        alert = session.get(Alert, alert_id)
        return plan_notifications(session, alert, [], now)


def test_planning_twice_creates_one_row_and_repeats_after_the_interval(
        pg_runtime: Runtime, scene: dict) -> None:
    alert_id = _new_alert(pg_runtime, scene)
    assert len(_plan(pg_runtime, alert_id, NOW)) == 1
    assert _plan(pg_runtime, alert_id, NOW + timedelta(minutes=5)) == []
    assert len(_plan(pg_runtime, alert_id, NOW + timedelta(minutes=10))) == 1
    with pg_runtime.sessions() as session:
        sequences = list(session.scalars(select(Notification.sequence).where(
            Notification.alert_id == alert_id).order_by(Notification.sequence)))
    assert sequences == [0, 1]


def test_concurrent_deliveries_send_once(pg_runtime: Runtime, scene: dict,
                                         receiver: HTTPReceiver) -> None:
    receiver.clear()
    alert_id = _new_alert(pg_runtime, scene)
    (note_id,) = _plan(pg_runtime, alert_id, NOW)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(deliver(
        pg_runtime.sessions, note_id, lambda: NOW, "http://api", 1.0)[0])) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["claimed", "claimed", "claimed", "sent"]
    assert len(receiver.requests) == 1


def test_a_failing_receiver_is_retried_with_backoff_then_succeeds(
        pg_runtime: Runtime, scene: dict, receiver: HTTPReceiver) -> None:
    receiver.clear()
    receiver.respond_with(503, times=2)
    alert_id = _new_alert(pg_runtime, scene)
    (note_id,) = _plan(pg_runtime, alert_id, NOW)
    clock = ManualClock(NOW)
    assert deliver(pg_runtime.sessions, note_id, clock, "http://api", 1.0) == ("retry", 1.0)
    with pg_runtime.sessions() as session:
        assert note_id not in due_notifications(session, clock.now)  # not before the backoff
    clock.now += timedelta(seconds=1)
    assert deliver(pg_runtime.sessions, note_id, clock, "http://api", 1.0) == ("retry", 2.0)
    clock.now += timedelta(seconds=2)
    with pg_runtime.sessions() as session:
        assert note_id in due_notifications(session, clock.now)
    assert deliver(pg_runtime.sessions, note_id, clock, "http://api", 1.0) == ("sent", None)
    with pg_runtime.sessions() as session:
        note = session.get(Notification, note_id)
        assert note.status == "sent" and note.attempts == 3
    assert len(receiver.requests) == 3


def test_a_rejecting_receiver_fails_without_retry(pg_runtime: Runtime, scene: dict,
                                                  receiver: HTTPReceiver) -> None:
    receiver.clear()
    receiver.respond_with(400, times=1)
    alert_id = _new_alert(pg_runtime, scene)
    (note_id,) = _plan(pg_runtime, alert_id, NOW)
    outcome = deliver(pg_runtime.sessions, note_id, ManualClock(NOW), "http://api", 1.0)
    with pg_runtime.sessions() as session:
        error = session.get(Notification, note_id).error
    assert outcome == ("failed", None), error
    assert "400" in error


def test_resolve_by_hand_owes_exactly_one_resolved_notification(
        pg_runtime: Runtime, scene: dict) -> None:
    alert_id = _new_alert(pg_runtime, scene)
    _plan(pg_runtime, alert_id, NOW)
    with transaction(pg_runtime.sessions) as session:
        _, created = act(session, alert_id, ActionInput(action="resolve", user="ops"), NOW)
    assert len(created) == 1
    assert _plan(pg_runtime, alert_id, NOW) == []
    with pg_runtime.sessions() as session:
        kinds = list(session.scalars(select(Notification.kind).where(
            Notification.alert_id == alert_id)))
    assert sorted(kinds) == ["firing", "resolved"]


def test_acknowledged_alerts_do_not_repeat_to_people(pg_runtime: Runtime, scene: dict) -> None:
    alert_id = _new_alert(pg_runtime, scene)
    _plan(pg_runtime, alert_id, NOW)
    with transaction(pg_runtime.sessions) as session:
        act(session, alert_id, ActionInput(action="acknowledge", user="ops"), NOW)
    assert _plan(pg_runtime, alert_id, NOW + timedelta(hours=5)) == []
