"""The JSON metrics summary: latest values, 5-minute rates, hit rate and memory % per target."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.history import TargetView
from monitor.measures import counter_delta, hit_rate, memory_percentage

RATE_FIELDS = {
    "commands_per_second": "total_commands_processed",
    "net_input_bytes_per_second": "total_net_input_bytes",
    "net_output_bytes_per_second": "total_net_output_bytes",
    "expired_keys_per_second": "expired_keys",
    "evicted_keys_per_second": "evicted_keys",
    "error_replies_per_second": "total_error_replies",
    "rejected_connections_per_second": "rejected_connections",
    "connections_received_per_second": "total_connections_received",
}
LATEST_FIELDS = (
    "used_memory", "used_memory_rss", "used_memory_peak", "maxmemory", "total_system_memory",
    "mem_fragmentation_ratio", "connected_clients", "maxclients", "blocked_clients",
    "rejected_connections", "total_commands_processed", "instantaneous_ops_per_sec",
    "keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys", "uptime_in_seconds",
    "connected_slaves", "total_error_replies",
)


def _rates(view: TargetView) -> dict[str, float | None]:
    latest, start = view.latest, view.window_start
    if latest is None or start is None or start.id == latest.id:
        return {name: None for name in RATE_FIELDS}
    seconds = (latest.collected_at - start.collected_at).total_seconds()
    rates: dict[str, float | None] = {}
    for name, field in RATE_FIELDS.items():
        delta = counter_delta(start.data, latest.data, field)
        rates[name] = None if delta is None else round(delta / seconds, 6)
    rates["window_seconds"] = round(seconds, 3)
    return rates


def target_summary(view: TargetView, now: datetime) -> dict[str, Any]:
    """Summarise one target for the JSON API."""
    latest = view.latest
    state = view.state
    summary: dict[str, Any] = {
        "target_id": view.target.id, "target": view.target.name, "project": view.project,
        "up": bool(state and state.up), "error": state.error if state else None,
        "last_sample_at": latest.collected_at.isoformat() if latest else None,
        "sample_age_seconds": round((now - latest.collected_at).total_seconds(), 3)
        if latest else None,
    }
    if latest is None or not latest.up:
        return summary
    fields = latest.data.get("f", {})
    strings = latest.data.get("s", {})
    memory = memory_percentage(fields)
    start = view.window_start.data if view.window_start is not None else None
    summary.update(
        version=strings.get("redis_version"), role=strings.get("role"),
        probe_seconds=latest.probe_seconds,
        memory_percentage=round(memory.percent, 4) if memory else None,
        memory_basis=memory.basis if memory else None,
        hit_rate=hit_rate(start, latest.data),
        connection_utilization=(fields["connected_clients"] / fields["maxclients"])
        if fields.get("maxclients") else None,
        latest={name: fields.get(name) for name in LATEST_FIELDS},
        rates=_rates(view),
    )
    return summary
