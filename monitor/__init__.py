"""Redis Monitor: the domain, importable without Celery or Flask."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["AlertStatus", "HealthCheckType", "HealthStatus", "redis_alert_manager",
           "redis_health_checker", "redis_metrics_collector"]


def __getattr__(name: str) -> Any:
    """Import the Python API lazily, so `import monitor.settings` stays light."""
    if name in ("redis_health_checker", "redis_metrics_collector", "redis_alert_manager"):
        from monitor import api

        return getattr(api, name)
    if name in ("HealthCheckType", "HealthStatus"):
        from monitor.health import checks

        return getattr(checks, name)
    if name == "AlertStatus":
        from monitor.alerts.lifecycle import AlertStatus

        return AlertStatus
    raise AttributeError(name)
