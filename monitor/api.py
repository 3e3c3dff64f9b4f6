"""The seed's Python API: awaitable facades over the domain functions workers and web use.

    from monitor import redis_health_checker, HealthCheckType
    report = await redis_health_checker.perform_full_health_check()
    memory = await redis_health_checker.check_specific_component(HealthCheckType.MEMORY_USAGE)
"""
from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from monitor.alerts.lifecycle import AlertStatus
from monitor.alerts.service import (
    ActionInput,
    AlertFilter,
    act,
    alert_detail,
    alert_summary,
    list_alerts,
)
from monitor.collect import ClientCache
from monitor.db import Target, transaction
from monitor.exposition import RATE_WINDOW
from monitor.health.checks import HealthCheckType, HealthStatus, worst
from monitor.health.service import check_target
from monitor.history import latest_views
from monitor.runtime import Runtime, bootstrap, build_runtime
from monitor.settings import load_settings
from monitor.summary import target_summary


class _Facade:
    """Lazily build a runtime from the environment (or take one) on first use."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime
        self._clients: ClientCache | None = None

    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = build_runtime(load_settings())
            bootstrap(self._runtime)
        return self._runtime

    def clients(self) -> ClientCache:
        if self._clients is None:
            s = self.runtime().settings
            self._clients = ClientCache(s.redis_connection_timeout, s.redis_operation_timeout,
                                        s.redis_max_connections)
        return self._clients

    def target_ids(self, project_id: int | None = None) -> list[int]:
        query = select(Target.id).where(Target.enabled.is_(True)).order_by(Target.id)
        if project_id is not None:
            query = query.where(Target.project_id == project_id)
        with self.runtime().sessions() as session:
            return list(session.scalars(query))


class RedisHealthChecker(_Facade):
    """Run health checks now, through the shared circuit breaker."""

    def _run(self, only: HealthCheckType | None, project_id: int | None) -> dict[str, Any]:
        rt = self.runtime()
        reports = [check_target(rt.sessions, self.clients(), i, rt.clock(), rt.settings, only)
                   for i in self.target_ids(project_id)]
        found = [r.to_dict() for r in reports if r is not None]
        overall = worst([HealthStatus(r["status"]) for r in found])
        return {"status": str(overall), "targets": found}

    async def perform_full_health_check(self, project_id: int | None = None) -> dict[str, Any]:
        """Run every check on every enabled target."""
        return await asyncio.to_thread(self._run, None, project_id)

    async def check_specific_component(self, check: HealthCheckType,
                                       project_id: int | None = None) -> dict[str, Any]:
        """Run one check on every enabled target."""
        return await asyncio.to_thread(self._run, HealthCheckType(check), project_id)


class RedisMetricsCollector(_Facade):
    """Read the collected history."""

    def _summary(self, project_id: int | None) -> dict[str, Any]:
        rt = self.runtime()
        now = rt.clock()
        with rt.sessions() as session:
            views = latest_views(session, now, RATE_WINDOW, project_id=project_id)
        return {"generated_at": now.isoformat(),
                "targets": [target_summary(v, now) for v in views]}

    async def get_metrics_summary(self, project_id: int | None = None) -> dict[str, Any]:
        """Return the latest values, 5-minute rates, hit rate and memory % per target."""
        return await asyncio.to_thread(self._summary, project_id)


class RedisAlertManager(_Facade):
    """Read and act on alerts."""

    def _alerts(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        with self.runtime().sessions() as session:
            return list_alerts(session, AlertFilter(status=status, limit=limit))[0]

    async def get_alerts(self, status: AlertStatus | str | None = None,
                         limit: int = 100) -> list[dict[str, Any]]:
        """Return the newest alerts, optionally of one status."""
        wanted = AlertStatus(status).value if status is not None else None
        return await asyncio.to_thread(self._alerts, wanted, limit)

    def _ack(self, alert_id: int, user: str, comment: str | None,
             duration: str | None) -> dict[str, Any]:
        rt = self.runtime()
        with transaction(rt.sessions) as session:
            act(session, alert_id, ActionInput(action="acknowledge", user=user,
                                               comment=comment, duration=duration), rt.clock())
        with rt.sessions() as session:
            return alert_detail(session, alert_id)

    async def acknowledge_alert(self, alert_id: int, user: str, comment: str | None = None,
                                duration: str | None = None) -> dict[str, Any]:
        """Acknowledge an alert (optionally until `duration`, like "10m")."""
        return await asyncio.to_thread(self._ack, alert_id, user, comment, duration)

    def _summary(self) -> dict[str, Any]:
        rt = self.runtime()
        with rt.sessions() as session:
            return alert_summary(session, rt.clock())

    async def get_alert_summary(self) -> dict[str, Any]:
        """Return open-alert counts and mean times to acknowledge and resolve."""
        return await asyncio.to_thread(self._summary)


redis_health_checker = RedisHealthChecker()
redis_alert_manager = RedisAlertManager()
redis_metrics_collector = RedisMetricsCollector()
