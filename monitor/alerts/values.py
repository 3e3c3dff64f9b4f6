"""What an alert rule can watch: catalogue metrics, windowed rates and health checks."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.catalogue import SCALARS
from monitor.health.checks import HealthCheckType
from monitor.measures import counter_delta, hit_rate, memory_percentage

HEALTH_RANK = {"healthy": 0.0, "degraded": 1.0, "unhealthy": 2.0}


@dataclass(frozen=True)
class Context:
    """Everything known about one target at one evaluation."""

    sampled: bool  # a sample exists at all
    up: bool | None  # the latest sample's up, None without sample
    stale: bool  # the latest sample is too old to judge by
    sample_age_seconds: float | None
    latest: dict[str, Any] = field(default_factory=dict)  # the latest successful document
    window_start: dict[str, Any] | None = None
    window_seconds: float | None = None
    health: dict[str, dict[str, Any]] = field(default_factory=dict)  # check -> result dict
    slow_commands: int = 0  # slowlog entries over SLOW_COMMAND_THRESHOLD in the window


@dataclass(frozen=True)
class Watchable:
    unit: str
    help: str
    read: Callable[[Context], float | None]
    needs_fresh_sample: bool = True  # stale data must not count as fine


def _field(name: str, scale: float = 1.0) -> Callable[[Context], float | None]:
    def read(ctx: Context) -> float | None:
        value = ctx.latest.get("f", {}).get(name)
        return None if value is None else float(value) * scale
    return read


def _status(name: str) -> Callable[[Context], float | None]:
    def read(ctx: Context) -> float | None:
        value = ctx.latest.get("s", {}).get(name)
        return None if value is None else (1.0 if value in ("ok", "up") else 0.0)
    return read


def _rate(name: str) -> Callable[[Context], float | None]:
    def read(ctx: Context) -> float | None:
        delta = counter_delta(ctx.window_start, ctx.latest, name)
        if delta is None or not ctx.window_seconds:
            return None
        return delta / ctx.window_seconds
    return read


def _increase(name: str) -> Callable[[Context], float | None]:
    def read(ctx: Context) -> float | None:
        return counter_delta(ctx.window_start, ctx.latest, name)
    return read


def _memory(ctx: Context) -> float | None:
    measured = memory_percentage(ctx.latest.get("f", {}))
    return None if measured is None else measured.percent


def _utilization(ctx: Context) -> float | None:
    fields = ctx.latest.get("f", {})
    return fields["connected_clients"] / fields["maxclients"] if fields.get("maxclients") \
        and "connected_clients" in fields else None


def _error_rate(ctx: Context) -> float | None:
    errors = counter_delta(ctx.window_start, ctx.latest, "total_error_replies")
    commands = counter_delta(ctx.window_start, ctx.latest, "total_commands_processed")
    if errors is None or not commands:
        return None
    return 100.0 * errors / commands


def _master_link(ctx: Context) -> float | None:
    strings = ctx.latest.get("s", {})
    if strings.get("role") != "slave":
        return None
    return 1.0 if strings.get("master_link_status") == "up" else 0.0


def _response_p95(ctx: Context) -> float | None:
    details = ctx.health.get("performance", {}).get("details", {})
    value = details.get("p95_ms")
    return None if value is None else float(value)


def _health(check: str) -> Callable[[Context], float | None]:
    def read(ctx: Context) -> float | None:
        return HEALTH_RANK.get(ctx.health.get(check, {}).get("status", "unknown"))
    return read


WATCHABLE: dict[str, Watchable] = {
    "up": Watchable("", "1 when the latest probe succeeded",
                    lambda ctx: None if ctx.up is None else float(ctx.up)),
    "sample_age_seconds": Watchable("seconds", "age of the latest sample",
                                    lambda ctx: ctx.sample_age_seconds, False),
    "memory_percentage": Watchable("percent", "used memory % of maxmemory (or system memory)",
                                   _memory),
    "connection_utilization": Watchable("ratio", "connected_clients / maxclients",
                                        _utilization),
    "hit_rate": Watchable("ratio", "keyspace hit ratio over the last 5 minutes",
                          lambda ctx: hit_rate(ctx.window_start, ctx.latest)),
    "error_rate_percentage": Watchable("percent",
                                       "error replies per command over the last 5 minutes",
                                       _error_rate),
    "evicted_keys_per_second": Watchable("keys/s", "evictions over the last 5 minutes",
                                         _rate("evicted_keys")),
    "expired_keys_per_second": Watchable("keys/s", "expirations over the last 5 minutes",
                                         _rate("expired_keys")),
    "commands_per_second": Watchable("ops/s", "commands over the last 5 minutes",
                                     _rate("total_commands_processed")),
    "rejected_connections_increase": Watchable(
        "connections", "connections refused over the last 5 minutes",
        _increase("rejected_connections")),
    "rdb_last_bgsave_status": Watchable("", "1 when the last BGSAVE succeeded",
                                        _status("rdb_last_bgsave_status")),
    "aof_last_write_status": Watchable("", "1 when the last AOF write succeeded",
                                       _status("aof_last_write_status")),
    "master_link_up": Watchable("", "1 when a replica's master link is up (replicas only)",
                                _master_link),
    "response_time_p95_ms": Watchable("ms", "P95 of the latest health check's timed PINGs",
                                      _response_p95, False),
    "slow_commands_in_window": Watchable(
        "commands", "slowlog entries over SLOW_COMMAND_THRESHOLD in the last 5 minutes",
        lambda ctx: float(ctx.slow_commands)),
}
# Every plain INFO metric of the catalogue, by its exported name.
WATCHABLE.update({m.name: Watchable(m.unit, m.help, _field(m.field or "", m.scale))
                  for m in SCALARS if m.name not in WATCHABLE})
# Health checks: 0 healthy, 1 degraded, 2 unhealthy; unknown gives no value.
WATCHABLE.update({f"health.{t}": Watchable("rank", f"{t} check: 0 healthy, 1 degraded, "
                                           "2 unhealthy", _health(str(t)), False)
                  for t in HealthCheckType})


def read_value(metric: str, ctx: Context) -> tuple[float | None, bool]:
    """Return (value, stale): stale when the metric needs a fresh sample and has none."""
    watch = WATCHABLE[metric]
    if watch.needs_fresh_sample and ctx.stale:
        return None, True
    if watch.needs_fresh_sample and not ctx.latest and metric != "up":
        return None, False
    return watch.read(ctx), False
