"""Health checks of a target and the circuit breaker that protects it."""
from __future__ import annotations

from monitor.health.breaker import BreakerState, CircuitState
from monitor.health.checks import (
    CheckResult,
    HealthCheckType,
    HealthStatus,
    Observation,
    Thresholds,
    judge,
    worst,
)

__all__ = [
    "BreakerState", "CheckResult", "CircuitState", "HealthCheckType", "HealthStatus",
    "Observation", "Thresholds", "judge", "worst",
]
