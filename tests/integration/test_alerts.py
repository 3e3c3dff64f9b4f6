"""Alert evaluation over real samples in PostgreSQL, with the clock frozen by the test."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from monitor.alerts.rules import RuleInput
from monitor.alerts.service import ActionInput, AlertError, act, alert_detail, create_rule
from monitor.collect import ClientCache
from monitor.db import Alert, AlertEvent, transaction
from monitor.jobs import collect_target, evaluate_alerts
from monitor.runtime import Runtime, bootstrap
from monitor.targets import add_target
from tests.conftest import with_settings
from tests.support.clock import ManualClock
from tests.support.servers import RedisServer


class Clock(ManualClock):
    """Each new clock starts after every earlier one: the evaluation lease is shared through
    the database, so time must never go back between scenes."""

    latest = datetime.now(UTC)

    def __init__(self) -> None:
        Clock.latest += timedelta(hours=1)
        super().__init__(Clock.latest)

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        Clock.latest = max(Clock.latest, self.now)


@pytest.fixture(scope="module")
def clients() -> ClientCache:
    cache = ClientCache(2, 2, 10)
    yield cache
    cache.close()


class Scene:
    """One target, one rule, a frozen clock: collect and evaluate step by step."""

    def __init__(self, rt: Runtime, clients: ClientCache, server: RedisServer, name: str,
                 **rule: object) -> None:
        self.rt, self.clients, self.server, self.clock = rt, clients, server, Clock()
        self.slot = 0
        with transaction(rt.sessions) as session:
            self.target_id = add_target(session, project="alerting", name=name, url=server.url,
                                        now=self.clock()).id
            spec = {"name": f"rule_{name}", "metric": "memory_percentage", "operator": ">",
                    "threshold": 90.0, "target_id": self.target_id, "severity": "critical"}
            self.rule_id = create_rule(session, RuleInput(**(spec | rule)), self.clock())["id"]

    def step(self, seconds: float) -> list[Alert]:
        """Move time, collect a sample, evaluate; return this rule's alerts."""
        self.clock.advance(seconds)
        self.slot += 1
        collect_target(self.rt.sessions, self.clients, self.target_id, self.slot, self.clock,
                       1e-6)
        evaluate_alerts(self.rt.sessions, self.rt.settings, self.clock)
        return self.alerts()

    def alerts(self) -> list[Alert]:
        with self.rt.sessions() as session:
            return list(session.scalars(select(Alert).where(Alert.rule_id == self.rule_id)
                                        .order_by(Alert.id)))

    def set_memory_percent(self, percent: float) -> None:
        """Move maxmemory so that used_memory sits at `percent` of it."""
        client = self.server.client()
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(int(used * 100 / percent)))


@pytest.fixture(scope="module")
def booted(pg_runtime: Runtime) -> Runtime:
    """The module's runtime with built-in rules; evaluation leases last a millisecond."""
    bootstrap(pg_runtime)  # built-in rules exist too; they must not disturb our rule
    return with_settings(pg_runtime, alert_evaluation_interval=0.002)


def test_for_60s_pending_at_59_active_at_60(booted: Runtime, clients: ClientCache,
                                             redis_factory: Callable[..., RedisServer]) -> None:
    scene = Scene(booted, clients, redis_factory(), "timing", for_seconds=60)
    scene.set_memory_percent(95)
    (alert,) = scene.step(0)
    assert alert.status == "pending"
    (alert,) = scene.step(59)
    assert alert.status == "pending"
    (alert,) = scene.step(1)
    assert alert.status == "active" and alert.activated_at == scene.clock()


def test_hysteresis_band_neither_resolves_nor_refires(
        booted: Runtime, clients: ClientCache,
        redis_factory: Callable[..., RedisServer]) -> None:
    scene = Scene(booted, clients, redis_factory(), "band", clear_threshold=80.0)
    scene.set_memory_percent(95)
    (alert,) = scene.step(0)
    assert alert.status == "active"
    for percent in (85, 92, 83, 91, 88):
        scene.set_memory_percent(percent)
        (alert,) = scene.step(15)
        assert alert.status == "active", percent
    scene.set_memory_percent(50)
    (alert,) = scene.step(15)
    assert alert.status == "resolved" and alert.resolved_by == "evaluator"
    with booted.sessions() as session:
        kinds = [e.kind for e in session.scalars(select(AlertEvent).where(
            AlertEvent.alert_id == alert.id).order_by(AlertEvent.id))]
    assert kinds == ["pending", "active", "cleared", "resolved"]


def test_a_resolved_alert_that_fires_again_is_a_new_alert(
        booted: Runtime, clients: ClientCache,
        redis_factory: Callable[..., RedisServer]) -> None:
    scene = Scene(booted, clients, redis_factory(), "again")
    scene.set_memory_percent(95)
    scene.step(0)
    scene.set_memory_percent(50)
    scene.step(15)
    scene.set_memory_percent(95)
    first, second = scene.step(15)
    assert first.status == "resolved" and second.status == "active"


def test_acknowledgement_with_expiry_returns_to_active(
        booted: Runtime, clients: ClientCache,
        redis_factory: Callable[..., RedisServer]) -> None:
    scene = Scene(booted, clients, redis_factory(), "ackexpiry")
    scene.set_memory_percent(95)
    (alert,) = scene.step(0)
    with transaction(booted.sessions) as session:
        act(session, alert.id, ActionInput(action="acknowledge", user="oncall",
                                           comment="looking", duration="10m"), scene.clock())
    (alert,) = scene.step(599)
    assert alert.status == "acknowledged" and alert.acknowledged_by == "oncall"
    (alert,) = scene.step(1)
    assert alert.status == "active"
    with booted.sessions() as session:
        events = [(e["kind"], e["actor"]) for e in alert_detail(session, alert.id)["events"]]
    assert ("acknowledged", "oncall") in events
    assert ("acknowledgement_expired", "evaluator") in events


def test_stale_data_does_not_resolve(booted: Runtime, clients: ClientCache,
                                     redis_factory: Callable[..., RedisServer]) -> None:
    scene = Scene(booted, clients, redis_factory(), "stale")
    scene.set_memory_percent(95)
    scene.step(0)
    scene.clock.advance(600)  # no collection for 10 minutes
    evaluate_alerts(booted.sessions, booted.settings, scene.clock)
    (alert,) = scene.alerts()
    assert alert.status == "active" and alert.evaluation == "stale"
    with booted.sessions() as session:
        stale = session.scalar(select(Alert).where(
            Alert.target_id == scene.target_id, Alert.labels["rule"].as_string() ==
            "redis_stale_data"))
    assert stale is not None and stale.status == "active"
    assert "No fresh data" in stale.summary


def test_impossible_actions_are_conflicts(booted: Runtime, clients: ClientCache,
                                          redis_factory: Callable[..., RedisServer]) -> None:
    scene = Scene(booted, clients, redis_factory(), "conflicts")
    scene.set_memory_percent(95)
    (alert,) = scene.step(0)
    with transaction(booted.sessions) as session:
        act(session, alert.id, ActionInput(action="resolve", user="ops"), scene.clock())
    with pytest.raises(AlertError) as error, transaction(booted.sessions) as session:
        act(session, alert.id, ActionInput(action="acknowledge", user="ops"), scene.clock())
    assert error.value.code == "conflict"
    with pytest.raises(ValidationError, match="acknowledge"):
        ActionInput.model_validate({"action": "dance", "user": "ops"})
