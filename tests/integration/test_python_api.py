"""The seed's Python API: awaitable facades over the same domain functions."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from monitor import AlertStatus, HealthCheckType
from monitor.api import RedisAlertManager, RedisHealthChecker, RedisMetricsCollector
from monitor.collect import ClientCache
from monitor.db import Alert, AlertRule, transaction
from monitor.jobs import collect_target
from monitor.runtime import Runtime, bootstrap
from tests.conftest import with_settings
from tests.support.servers import RedisServer


@pytest.fixture(scope="module")
def rt(pg_runtime: Runtime, redis_server: RedisServer) -> Runtime:
    runtime = with_settings(pg_runtime, redis_url=redis_server.url)
    bootstrap(runtime)
    return runtime


def test_health_checker(rt: Runtime) -> None:
    checker = RedisHealthChecker(rt)
    full = asyncio.run(checker.perform_full_health_check())
    assert full["status"] == "healthy" and len(full["targets"][0]["checks"]) == 6
    memory = asyncio.run(checker.check_specific_component(HealthCheckType.MEMORY_USAGE))
    assert list(memory["targets"][0]["checks"]) == ["memory_usage"]


def test_metrics_summary(rt: Runtime) -> None:
    cache = ClientCache(2, 2, 10)
    collect_target(rt.sessions, cache, 1, 1, rt.clock, 1e-6)
    cache.close()
    summary = asyncio.run(RedisMetricsCollector(rt).get_metrics_summary())
    assert summary["targets"][0]["up"] is True
    assert summary["targets"][0]["latest"]["used_memory"] > 0


def test_alert_manager(rt: Runtime) -> None:
    now = datetime.now(UTC)
    with transaction(rt.sessions) as session:
        rule = session.query(AlertRule).filter_by(name="redis_memory_critical").one()
        alert = Alert(rule_id=rule.id, target_id=1, status="active", severity="critical",
                      value=95.0, summary="Memory at 95 %", labels={"rule": rule.name},
                      fingerprint="0" * 16, started_at=now, activated_at=now,
                      last_evaluated_at=now, evaluation="firing")
        session.add(alert)
        session.flush()
        alert_id = alert.id
    manager = RedisAlertManager(rt)
    active = asyncio.run(manager.get_alerts(status=AlertStatus.ACTIVE))
    assert [a["id"] for a in active] == [alert_id]
    acked = asyncio.run(manager.acknowledge_alert(alert_id, "admin_user"))
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "admin_user"
    summary = asyncio.run(manager.get_alert_summary())
    assert summary["by_status"] == {"acknowledged": 1}
