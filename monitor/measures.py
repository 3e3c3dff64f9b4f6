"""Derived measures computed from stored samples: memory %, hit rate, rates."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MemoryPercentage:
    percent: float
    limit: float
    basis: str  # "maxmemory" or "system_memory"


def memory_percentage(fields: dict[str, Any]) -> MemoryPercentage | None:
    """Return used memory against maxmemory, or against system memory when maxmemory is 0."""
    used = fields.get("used_memory")
    if used is None:
        return None
    if fields.get("maxmemory"):
        return MemoryPercentage(100.0 * used / fields["maxmemory"], fields["maxmemory"],
                                "maxmemory")
    if fields.get("total_system_memory"):
        return MemoryPercentage(100.0 * used / fields["total_system_memory"],
                                fields["total_system_memory"], "system_memory")
    return None


def counter_delta(start: dict[str, Any] | None, end: dict[str, Any], field: str) -> float | None:
    """Return the increase of a counter field between two documents; a reset counts from 0."""
    if start is None:
        return None
    before = start.get("f", {}).get(field)
    after = end.get("f", {}).get(field)
    if before is None or after is None:
        return None
    return after - before if after >= before else after


def hit_rate(start: dict[str, Any] | None, end: dict[str, Any]) -> float | None:
    """Return Δhits / (Δhits + Δmisses) between two samples, None without lookups."""
    hits = counter_delta(start, end, "keyspace_hits")
    misses = counter_delta(start, end, "keyspace_misses")
    if hits is None or misses is None or hits + misses <= 0:
        return None
    return hits / (hits + misses)


def rate_per_second(start: dict[str, Any] | None, end: dict[str, Any], field: str,
                    seconds: float) -> float | None:
    """Return the per-second increase of a counter over `seconds`."""
    delta = counter_delta(start, end, field)
    if delta is None or seconds <= 0:
        return None
    return delta / seconds
