"""Generate docs/metrics.md from the catalogue: `python -m monitor.docs > docs/metrics.md`."""
from __future__ import annotations

from pathlib import Path

from monitor.catalogue import ALL_METRICS, Metric
from monitor.settings import Settings

EXPORTER_FAMILIES = (Path(__file__).resolve().parent.parent / "tests" / "data"
                     / "redis_exporter_families.txt")
# Families about the exporter itself or its optional key-group scraping, not about the server.
EXPORTER_INTERNAL = frozenset({
    "redis_exporter_build_info", "redis_exporter_last_scrape_connect_time_seconds",
    "redis_exporter_last_scrape_error", "redis_exporter_scrape_duration_seconds",
    "redis_exporter_scrapes_total", "redis_last_key_groups_scrape_duration_milliseconds",
    "redis_target_scrape_request_errors_total",
})

HEADER = """# Metrics

Generated from `monitor/catalogue.py` by `make docs`; do not edit by hand.

Every series is exported by `GET /monitoring/redis/metrics/prometheus` as
`{prefix}_<name>` (prefix from `METRICS_PREFIX`, default `%s`), with the labels `project` and
`target` on every series plus the extra labels listed. Counters are exported as counters
(`_total`), never as rates; take `rate()` in PromQL. Values come from the latest stored sample of
each target; `hit_rate` is computed over the last 5 minutes of history.

The seed names are a contract: `memory_bytes`, `memory_percentage`, `connections_active`,
`connection_utilization`, `hit_rate`, `commands_total`, `command_duration_seconds`,
`errors_total`, `slow_commands_total` (`memory_alerts_total` arrives with alerting).

Decisions worth knowing:
- `memory_percentage` is measured against `maxmemory`, or against the host's
  `total_system_memory` when `maxmemory` is 0 (`memory_limit_bytes{basis}` says which), so it is
  never +Inf.
- `connection_utilization` and `hit_rate` are ratios from 0 to 1; `memory_percentage` is 0-100.
- `hit_rate` is absent when there were no lookups in the window (no traffic is not a bad ratio).
- `slow_commands_total` counts slowlog entries since the server started (last slowlog id + 1):
  commands slower than the server's `slowlog-log-slower-than`.
- `command_duration_seconds` is a summary: quantiles 0.5/0.99/0.999 from INFO latencystats
  (Redis 7+, cumulative since start), `_sum` and `_count` from INFO commandstats.

| metric | type | unit | labels | source | redis_exporter | help |
|---|---|---|---|---|---|---|
"""


def _row(metric: Metric) -> str:
    labels = ", ".join(metric.labels) or ""
    exporter = ", ".join(f"`{e}`" for e in metric.exporter_names) or "-"
    return (f"| `{metric.name}` | {metric.kind} | {metric.unit or '-'} | {labels} | "
            f"{metric.source} | {exporter} | {metric.help} |")


def exporter_families(path: Path = EXPORTER_FAMILIES) -> list[str]:
    """Return the redis_exporter families captured from a real scrape (tests/data)."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split()[0] for line in lines if line and not line.startswith("#")]


def coverage(families: list[str]) -> tuple[list[str], list[str]]:
    """Split the exporter's instance-level families into covered and missing."""
    mapped = {name for metric in ALL_METRICS for name in metric.exporter_names}
    instance = [f for f in families if f not in EXPORTER_INTERNAL]
    return [f for f in instance if f in mapped], [f for f in instance if f not in mapped]


def _coverage_section() -> str:
    covered, missing = coverage(exporter_families())
    if not covered and not missing:
        return ""
    total = len(covered) + len(missing)
    return (f"\n## Coverage of redis_exporter\n\nOf the {total} instance-level families that "
            f"redis_exporter 1.45 exports for Redis 7.0 (its own `redis_exporter_*` and "
            f"scrape-bookkeeping families left out), {len(covered)} "
            f"({100 * len(covered) / total:.0f} %) have a counterpart here. Without one: "
            + (", ".join(f"`{m}`" for m in missing) or "none")
            + " (`config_io_threads` needs CONFIG GET, which we keep off the fast path).\n")


def render() -> str:
    """Render the whole metrics document."""
    rows = [_row(m) for m in sorted(ALL_METRICS, key=lambda m: m.name)]
    return (HEADER % Settings().metrics_prefix + "\n".join(rows) + "\n"
            + _coverage_section())


if __name__ == "__main__":
    print(render(), end="")
