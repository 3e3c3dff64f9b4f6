"""The Prometheus collector: built per scrape from the history database."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor import catalogue
from monitor.catalogue import SCALARS
from monitor.db import Alert, CircuitBreaker, HealthResult
from monitor.history import TargetView, latest_views
from monitor.measures import hit_rate, memory_percentage

RATE_WINDOW = timedelta(minutes=5)
BASE = ("project", "target")
Labels = tuple[str, ...]
Emit = Callable[[str, Labels, float], None]


def _plain_labels(name: str) -> Labels:
    """Return a metric's own labels, without the summary's quantile."""
    return tuple(x for x in catalogue.BY_NAME[name].labels if x != "quantile")


class Families:
    """Metric families keyed by catalogue name, created on first use."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._families: dict[str, Metric] = {}

    def _family(self, name: str) -> Metric:
        if name in self._families:
            return self._families[name]
        meta = catalogue.BY_NAME[name]
        full = f"{self.prefix}_{name}"
        labels = list(BASE + _plain_labels(name))
        family: Metric
        if meta.kind == "counter":
            family = CounterMetricFamily(full.removesuffix("_total"), meta.help, labels=labels)
        elif meta.kind == "summary":
            family = SummaryMetricFamily(full, meta.help, labels=labels)
        elif meta.kind == "info":
            family = InfoMetricFamily(full.removesuffix("_info"), meta.help, labels=BASE)
        else:
            family = GaugeMetricFamily(full, meta.help, labels=labels)
        self._families[name] = family
        return family

    def add(self, name: str, labels: Labels, value: float) -> None:
        self._family(name).add_metric(list(labels), value)

    def add_info(self, name: str, labels: Labels, info: dict[str, str]) -> None:
        self._family(name).add_metric(list(labels), info)  # type: ignore[attr-defined]

    def add_summary(self, name: str, labels: Labels, quantiles: dict[str, float],
                    count: float, total: float) -> None:
        """Add a summary with quantile samples (SummaryMetricFamily only takes count and sum)."""
        family = self._family(name)
        keys = dict(zip(BASE + _plain_labels(name), labels, strict=True))
        for quantile, value in quantiles.items():
            family.add_sample(family.name, {**keys, "quantile": quantile}, value)
        family.add_sample(family.name + "_count", keys, count)
        family.add_sample(family.name + "_sum", keys, total)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


def _status(value: str | None) -> float | None:
    if value is None:
        return None
    return 1.0 if value in ("ok", "up") else 0.0


def emit_target(fam: Families, view: TargetView, now: datetime) -> None:
    """Add every series of one target to the families."""
    base = (view.project, view.target.name)
    up = bool(view.state and view.state.up)
    fam.add("up", base, 1.0 if up else 0.0)
    if view.latest is None:
        return
    fam.add("last_sample_age_seconds", base,
            max(0.0, (now - view.latest.collected_at).total_seconds()))
    if view.latest.probe_seconds is not None:
        fam.add("probe_duration_seconds", base, view.latest.probe_seconds)
    doc: dict[str, Any] = view.latest.data or {}
    if not view.latest.up or not doc:
        return
    _emit_scalars(fam, base, doc)
    _emit_seed(fam, base, doc, view)
    _emit_status(fam, base, doc)
    latencystats = doc.get("lat") or (view.state.latencystats if view.state else None) or {}
    _emit_commands(fam, base, doc, latencystats)
    _emit_keyspace(fam, base, doc)
    _emit_replication(fam, base, doc)
    _emit_slowlog_and_latency(fam, base, doc)
    _emit_info(fam, base, doc, view.latest.collected_at)


def _emit_scalars(fam: Families, base: Labels, doc: dict[str, Any]) -> None:
    fields = doc.get("f", {})
    for metric in SCALARS:
        if metric.field in fields:
            fam.add(metric.name, base, float(fields[metric.field]) * metric.scale)


def _emit_seed(fam: Families, base: Labels, doc: dict[str, Any], view: TargetView) -> None:
    fields = doc.get("f", {})
    if "used_memory" in fields:
        fam.add("memory_bytes", base, float(fields["used_memory"]))
    measured = memory_percentage(fields)
    if measured is not None:
        fam.add("memory_percentage", base, measured.percent)
        fam.add("memory_limit_bytes", base + (measured.basis,), measured.limit)
    if "connected_clients" in fields:
        fam.add("connections_active", base, float(fields["connected_clients"]))
        if fields.get("maxclients"):
            fam.add("connection_utilization", base,
                     fields["connected_clients"] / fields["maxclients"])
    start = view.window_start.data if view.window_start is not None else None
    rate = hit_rate(start, doc)
    if rate is not None:
        fam.add("hit_rate", base, rate)


def _emit_status(fam: Families, base: Labels, doc: dict[str, Any]) -> None:
    strings = doc.get("s", {})
    for name in ("rdb_last_bgsave_status", "aof_last_bgrewrite_status", "aof_last_write_status"):
        value = _status(strings.get(name))
        if value is not None:
            fam.add(name, base, value)
    if strings.get("role") == "slave":
        fam.add("master_link_up", base, _status(strings.get("master_link_status")) or 0.0)


def _emit_commands(fam: Families, base: Labels, doc: dict[str, Any],
                   latencies: dict[str, Any]) -> None:
    for cmd, (calls, usec, rejected, failed) in sorted(doc.get("cmd", {}).items()):
        labels = base + (cmd,)
        fam.add("commands_total", labels, calls)
        fam.add("commands_duration_seconds_total", labels, usec / 1e6)
        fam.add("commands_failed_calls_total", labels, failed)
        fam.add("commands_rejected_calls_total", labels, rejected)
        quantiles = {_quantile(k): v / 1e6 for k, v in latencies.get(cmd, {}).items()}
        fam.add_summary("command_duration_seconds", labels, quantiles, calls, usec / 1e6)
    for err, count in sorted(doc.get("err", {}).items()):
        fam.add("errors_total", base + (err,), count)


def _quantile(key: str) -> str:
    """Turn latencystats' p99.9 into Prometheus' quantile label 0.999."""
    return str(float(key.lstrip("p")) / 100)


def _emit_keyspace(fam: Families, base: Labels, doc: dict[str, Any]) -> None:
    for db, (keys, expires, avg_ttl) in sorted(doc.get("db", {}).items()):
        fam.add("db_keys", base + (db,), keys)
        fam.add("db_keys_expiring", base + (db,), expires)
        fam.add("db_avg_ttl_seconds", base + (db,), avg_ttl / 1000)


def _emit_replication(fam: Families, base: Labels, doc: dict[str, Any]) -> None:
    master_offset = doc.get("f", {}).get("master_repl_offset")
    for replica in doc.get("repl", []):
        labels = base + (str(replica["ip"]), str(replica["port"]), str(replica["state"]))
        if replica.get("offset") is not None:
            fam.add("connected_slave_offset_bytes", labels, replica["offset"])
            if master_offset is not None:
                fam.add("replica_lag_bytes", labels, max(0, master_offset - replica["offset"]))
        if replica.get("lag") is not None:
            fam.add("connected_slave_lag_seconds", labels, replica["lag"])


def _emit_slowlog_and_latency(fam: Families, base: Labels, doc: dict[str, Any]) -> None:
    slowlog = doc.get("slowlog", {})
    if "len" in slowlog:
        fam.add("slowlog_length", base, slowlog["len"])
    if "last_id" in slowlog:
        fam.add("slowlog_last_id", base, slowlog["last_id"])
        fam.add("slow_commands_total", base, slowlog["last_id"] + 1)
        fam.add("last_slow_execution_duration_seconds", base, slowlog["last_duration_us"] / 1e6)
    elif "len" in slowlog:
        fam.add("slow_commands_total", base, 0)
    for event, (at, latest_ms, _max_ms) in sorted(doc.get("latency", {}).items()):
        fam.add("latency_spike_last_seconds", base + (event,), at)
        fam.add("latency_spike_duration_seconds", base + (event,), latest_ms / 1000)


def _emit_info(fam: Families, base: Labels, doc: dict[str, Any], at: datetime) -> None:
    strings = doc.get("s", {})
    fam.add_info("instance_info", base, {
        k: strings.get(k, "") for k in catalogue.BY_NAME["instance_info"].labels})
    if strings.get("role") == "slave":
        fam.add_info("slave_info", base, {
            k: strings.get(k, "") for k in catalogue.BY_NAME["slave_info"].labels})
    uptime = doc.get("f", {}).get("uptime_in_seconds")
    if uptime is not None:
        fam.add("start_time_seconds", base, at.timestamp() - uptime)


HEALTH_STATUSES = ("healthy", "degraded", "unhealthy", "unknown")
CIRCUIT_STATES = ("closed", "open", "half_open")


def emit_health(fam: Families, base: Labels, result: HealthResult | None,
                breaker: CircuitBreaker | None, now: datetime) -> None:
    """Add the health state-set and the circuit breaker series of one target."""
    state = breaker.state if breaker else "closed"
    for name in CIRCUIT_STATES:
        fam.add("circuit_breaker_state", base + (name,), 1.0 if name == state else 0.0)
    fam.add("circuit_breaker_failures", base, float(breaker.failures if breaker else 0))
    if breaker is not None and breaker.state != "closed" and breaker.next_probe_at:
        fam.add("circuit_breaker_next_probe_timestamp_seconds", base,
                breaker.next_probe_at.timestamp())
    if result is None:
        return
    fam.add("health_check_age_seconds", base, max(0.0, (now - result.checked_at).total_seconds()))
    current = {"overall": result.status} | {c["check"]: c["status"] for c in result.checks}
    for check, status in current.items():
        for name in HEALTH_STATUSES:
            fam.add("health_status", base + (check, name), 1.0 if name == status else 0.0)


class HistoryCollector(Collector):
    """Yield metric families from the latest stored samples at every scrape."""

    def __init__(self, sessions: sessionmaker[Session], prefix: str,
                 clock: Callable[[], datetime], project_id: int | None = None) -> None:
        self.sessions = sessions
        self.prefix = prefix
        self.clock = clock
        self.project_id = project_id

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self.sessions() as session:
            views = latest_views(session, now, RATE_WINDOW, project_id=self.project_id)
            health = latest_health_results(session)
            breakers = {b.target_id: b for b in session.scalars(select(CircuitBreaker))}
            open_alerts, memory_alerts = alert_counts(session)
        fam = Families(self.prefix)
        for view in views:
            base = (view.project, view.target.name)
            emit_target(fam, view, now)
            emit_health(fam, base, health.get(view.target.id), breakers.get(view.target.id), now)
            emit_alerts(fam, base, open_alerts.get(view.target.id, {}),
                        memory_alerts.get(view.target.id, 0))
        yield from fam


OPEN_STATUSES = ("pending", "active", "acknowledged")
SEVERITIES = ("info", "warning", "critical")


def alert_counts(session: Session) -> tuple[dict[int, dict[tuple[str, str], int]], dict[int, int]]:
    """Count open alerts per target by (status, severity), and memory alerts ever raised."""
    open_rows = session.execute(
        select(Alert.target_id, Alert.status, Alert.severity, func.count())
        .where(Alert.status.in_(OPEN_STATUSES))
        .group_by(Alert.target_id, Alert.status, Alert.severity)).all()
    open_alerts: dict[int, dict[tuple[str, str], int]] = {}
    for target_id, status, severity, count in open_rows:
        open_alerts.setdefault(target_id, {})[(status, severity)] = int(count)
    memory_rows = session.execute(
        select(Alert.target_id, func.count())
        .where(Alert.activated_at.is_not(None),
               Alert.labels["category"].as_string() == "memory")
        .group_by(Alert.target_id)).all()
    return open_alerts, {target_id: int(count) for target_id, count in memory_rows}


def emit_alerts(fam: Families, base: Labels, counts: dict[tuple[str, str], int],
                memory_alerts: int) -> None:
    """Add open-alert counts (every status and severity, zeros included) and memory alerts."""
    for status in OPEN_STATUSES:
        for severity in SEVERITIES:
            fam.add("alerts", base + (status, severity), float(counts.get((status, severity), 0)))
    fam.add("memory_alerts_total", base, float(memory_alerts))


def latest_health_results(session: Session) -> dict[int, HealthResult]:
    """Return the newest stored health result of each target."""
    newest = select(func.max(HealthResult.id)).group_by(HealthResult.target_id)
    query = select(HealthResult).where(HealthResult.id.in_(newest))
    return {r.target_id: r for r in session.scalars(query)}
