"""Judge a target's health from one observation: pure functions, no I/O."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from monitor.measures import memory_percentage
from monitor.settings import Settings


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class HealthCheckType(StrEnum):
    CONNECTIVITY = "connectivity"
    MEMORY_USAGE = "memory_usage"
    CONNECTION_POOL = "connection_pool"
    PERFORMANCE = "performance"
    PERSISTENCE = "persistence"
    REPLICATION = "replication"


# Unknown ranks above healthy: a load balancer must not trust what we could not see.
_RANK = {HealthStatus.HEALTHY: 0, HealthStatus.UNKNOWN: 1, HealthStatus.DEGRADED: 2,
         HealthStatus.UNHEALTHY: 3}


def worst(statuses: list[HealthStatus]) -> HealthStatus:
    """Return the worst status; no status at all is unknown."""
    return max(statuses, key=_RANK.__getitem__, default=HealthStatus.UNKNOWN)


@dataclass(frozen=True)
class CheckResult:
    check: HealthCheckType
    status: HealthStatus
    response_time_ms: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        data = asdict(self)
        data["check"], data["status"] = str(self.check), str(self.status)
        return data


@dataclass(frozen=True)
class Thresholds:
    memory_warning: float = 80.0
    memory_critical: float = 90.0
    response_warning_ms: float = 100.0
    response_critical_ms: float = 1000.0
    pool_warning: float = 80.0
    pool_critical: float = 95.0
    hit_warning: float = 80.0
    hit_critical: float = 70.0
    replica_lag_warning_s: float = 10.0
    save_age_warning_s: float = 48 * 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """Take the thresholds from the settings."""
        return cls(settings.memory_warning_threshold, settings.memory_critical_threshold,
                   settings.response_time_warning_threshold,
                   settings.response_time_critical_threshold,
                   settings.connection_pool_warning_threshold,
                   settings.connection_pool_critical_threshold,
                   settings.hit_rate_warning_threshold, settings.hit_rate_critical_threshold)


@dataclass
class Observation:
    """What one look at a target saw; gathered by monitor.health.probe."""

    info: dict[str, Any]
    ping_ms: float
    info_ms: float
    rw_mode: str  # "read_write" or "read_only"
    rw_error: str | None
    rw_ms: float
    burst_ms: list[float]
    pool_in_use: int
    pool_max: int
    previous_rejected: int | None = None
    window_hit_rate: float | None = None


def _above(value: float, warning: float, critical: float) -> HealthStatus:
    if value >= critical:
        return HealthStatus.UNHEALTHY
    if value >= warning:
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY


def _below(value: float, warning: float, critical: float) -> HealthStatus:
    if value < critical:
        return HealthStatus.UNHEALTHY
    if value < warning:
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY


def check_connectivity(obs: Observation, th: Thresholds) -> CheckResult:
    """PING, then a write/read/delete of a short-lived key (a read on a replica)."""
    elapsed = obs.ping_ms + obs.rw_ms
    details = {"ping_ms": round(obs.ping_ms, 3), "mode": obs.rw_mode,
               "read_write_ms": round(obs.rw_ms, 3)}
    if obs.rw_error:
        return CheckResult(HealthCheckType.CONNECTIVITY, HealthStatus.UNHEALTHY, elapsed,
                           f"PING answered but the {obs.rw_mode} probe failed: {obs.rw_error}",
                           details)
    status = _above(elapsed, th.response_warning_ms, th.response_critical_ms)
    return CheckResult(HealthCheckType.CONNECTIVITY, status, elapsed,
                       f"PING and {obs.rw_mode.replace('_', '/')} probe in {elapsed:.1f} ms",
                       details)


def check_memory(obs: Observation, th: Thresholds) -> CheckResult:
    """Memory % against maxmemory, or against system memory when maxmemory is 0."""
    measured = memory_percentage(obs.info)
    if measured is None:
        return CheckResult(HealthCheckType.MEMORY_USAGE, HealthStatus.UNKNOWN, obs.info_ms,
                           "INFO gives neither maxmemory nor total_system_memory")
    status = _above(measured.percent, th.memory_warning, th.memory_critical)
    basis = "maxmemory" if measured.basis == "maxmemory" else \
        "system memory (maxmemory is 0, no limit)"
    details = {"used_memory": obs.info.get("used_memory"), "limit_bytes": measured.limit,
               "basis": measured.basis, "percentage": round(measured.percent, 3),
               "maxmemory_policy": obs.info.get("maxmemory_policy"),
               "warning": th.memory_warning, "critical": th.memory_critical}
    return CheckResult(HealthCheckType.MEMORY_USAGE, status, obs.info_ms,
                       f"{measured.percent:.1f} % of {basis}", details)


def check_connection_pool(obs: Observation, th: Thresholds) -> CheckResult:
    """Our pool use against its size, the server's clients against maxclients, rejections."""
    pool_pct = 100.0 * obs.pool_in_use / obs.pool_max if obs.pool_max else 0.0
    clients, maxclients = obs.info.get("connected_clients", 0), obs.info.get("maxclients")
    clients_pct = 100.0 * clients / maxclients if maxclients else 0.0
    rejected = int(obs.info.get("rejected_connections", 0))
    new_rejections = 0 if obs.previous_rejected is None else max(
        0, rejected - obs.previous_rejected)
    statuses = [_above(pool_pct, th.pool_warning, th.pool_critical),
                _above(clients_pct, th.pool_warning, th.pool_critical)]
    if new_rejections:
        statuses.append(HealthStatus.DEGRADED)
    message = (f"pool {obs.pool_in_use}/{obs.pool_max} ({pool_pct:.0f} %), server clients "
               f"{clients}/{maxclients or '?'} ({clients_pct:.1f} %), "
               f"{new_rejections} rejected since last check")
    details = {"pool_in_use": obs.pool_in_use, "pool_max": obs.pool_max,
               "pool_percentage": round(pool_pct, 3), "connected_clients": clients,
               "maxclients": maxclients, "clients_percentage": round(clients_pct, 3),
               "rejected_connections": rejected, "rejected_since_last_check": new_rejections}
    return CheckResult(HealthCheckType.CONNECTION_POOL, worst(statuses), obs.info_ms, message,
                       details)


def percentile(values: list[float], pct: float) -> float:
    """Return the nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(round(pct / 100.0 * len(ordered) + 0.4999)))
    return ordered[min(rank, len(ordered)) - 1]


def check_performance(obs: Observation, th: Thresholds) -> CheckResult:
    """P50/P95/P99 of a burst of timed PINGs, and the hit rate over the last window."""
    if not obs.burst_ms:
        return CheckResult(HealthCheckType.PERFORMANCE, HealthStatus.UNKNOWN, 0.0,
                           "no timed probe ran")
    p50, p95, p99 = (percentile(obs.burst_ms, p) for p in (50, 95, 99))
    statuses = [_above(p95, th.response_warning_ms, th.response_critical_ms)]
    hit = obs.window_hit_rate
    hit_text = "no lookups in the window"
    if hit is not None:
        # A poor hit rate is a cache-efficiency problem, not unavailability: at most degraded,
        # so a load balancer never drops a server for it (alert rules still fire on it).
        if _below(100.0 * hit, th.hit_warning, th.hit_critical) != HealthStatus.HEALTHY:
            statuses.append(HealthStatus.DEGRADED)
        hit_text = f"hit rate {100 * hit:.1f} %"
    details = {"probes": len(obs.burst_ms), "p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
               "p99_ms": round(p99, 3), "hit_rate": hit,
               "warning_ms": th.response_warning_ms, "critical_ms": th.response_critical_ms}
    return CheckResult(HealthCheckType.PERFORMANCE, worst(statuses), sum(obs.burst_ms),
                       f"P50 {p50:.2f} ms, P95 {p95:.2f} ms, P99 {p99:.2f} ms; {hit_text}",
                       details)


def check_persistence(obs: Observation, th: Thresholds, now_unix: float) -> CheckResult:
    """Last BGSAVE status and age, AOF write and rewrite status, changes since last save."""
    info = obs.info
    bgsave, aof_write = info.get("rdb_last_bgsave_status"), info.get("aof_last_write_status")
    rewrite = info.get("aof_last_bgrewrite_status")
    last_save = info.get("rdb_last_save_time")
    age = now_unix - last_save if isinstance(last_save, int | float) else None
    details = {"rdb_last_bgsave_status": bgsave, "rdb_last_save_age_seconds": age,
               "rdb_changes_since_last_save": info.get("rdb_changes_since_last_save"),
               "rdb_bgsave_in_progress": info.get("rdb_bgsave_in_progress"),
               "aof_enabled": info.get("aof_enabled"), "aof_last_write_status": aof_write,
               "aof_last_bgrewrite_status": rewrite}
    problems: list[tuple[HealthStatus, str]] = []
    if bgsave == "err":
        problems.append((HealthStatus.UNHEALTHY, "the last BGSAVE failed"))
    if info.get("aof_enabled") and aof_write == "err":
        problems.append((HealthStatus.UNHEALTHY, "the last AOF write failed"))
    if info.get("aof_enabled") and rewrite == "err":
        problems.append((HealthStatus.DEGRADED, "the last AOF rewrite failed"))
    if problems:
        return CheckResult(HealthCheckType.PERSISTENCE, worst([s for s, _ in problems]),
                           obs.info_ms, "; ".join(m for _, m in problems), details)
    age_text = f"last save {age:.0f} s ago" if age is not None else "no save yet"
    return CheckResult(HealthCheckType.PERSISTENCE, HealthStatus.HEALTHY, obs.info_ms,
                       f"BGSAVE ok, {age_text}, "
                       f"{info.get('rdb_changes_since_last_save', 0)} changes since", details)


def check_replication(obs: Observation, th: Thresholds) -> CheckResult:
    """A replica's link and lag to its master; a master's connected replicas."""
    info = obs.info
    if info.get("role") == "slave":
        link = info.get("master_link_status")
        lag = info.get("master_last_io_seconds_ago")
        details = {"role": "replica", "master_host": info.get("master_host"),
                   "master_port": info.get("master_port"), "master_link_status": link,
                   "master_last_io_seconds_ago": lag,
                   "master_link_down_since_seconds": info.get("master_link_down_since_seconds")}
        if link != "up":
            return CheckResult(HealthCheckType.REPLICATION, HealthStatus.UNHEALTHY, obs.info_ms,
                               f"link to master {info.get('master_host')}:"
                               f"{info.get('master_port')} is {link}", details)
        status = HealthStatus.DEGRADED if isinstance(lag, int) and lag > th.replica_lag_warning_s \
            else HealthStatus.HEALTHY
        return CheckResult(HealthCheckType.REPLICATION, status, obs.info_ms,
                           f"replica, link up, last I/O {lag} s ago", details)
    replicas = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit()
                and isinstance(v, dict)]
    offline = [r for r in replicas if r.get("state") != "online"]
    details = {"role": "master", "connected_slaves": info.get("connected_slaves", 0),
               "replicas": replicas}
    status = HealthStatus.DEGRADED if offline else HealthStatus.HEALTHY
    return CheckResult(HealthCheckType.REPLICATION, status, obs.info_ms,
                       f"master with {len(replicas)} replica(s)"
                       + (f", {len(offline)} not online" if offline else ""), details)


def judge(obs: Observation, th: Thresholds, now_unix: float,
          only: HealthCheckType | None = None) -> list[CheckResult]:
    """Run every check (or one) over an observation."""
    checks = {
        HealthCheckType.CONNECTIVITY: lambda: check_connectivity(obs, th),
        HealthCheckType.MEMORY_USAGE: lambda: check_memory(obs, th),
        HealthCheckType.CONNECTION_POOL: lambda: check_connection_pool(obs, th),
        HealthCheckType.PERFORMANCE: lambda: check_performance(obs, th),
        HealthCheckType.PERSISTENCE: lambda: check_persistence(obs, th, now_unix),
        HealthCheckType.REPLICATION: lambda: check_replication(obs, th),
    }
    return [run() for kind, run in checks.items() if only is None or kind == only]


def unreachable(error: str, only: HealthCheckType | None = None,
                message: str | None = None) -> list[CheckResult]:
    """Results for a target we could not (or must not) reach: connectivity fails, rest unknown."""
    results = [CheckResult(HealthCheckType.CONNECTIVITY, HealthStatus.UNHEALTHY, 0.0,
                           message or f"cannot reach the target: {error}", {"error": error})]
    results += [CheckResult(kind, HealthStatus.UNKNOWN, 0.0, "not checked: target unreachable")
                for kind in HealthCheckType if kind != HealthCheckType.CONNECTIVITY]
    return [r for r in results if only is None or r.check == only]
