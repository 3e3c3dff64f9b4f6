"""Alert rules: validation, operators with hysteresis, summaries, and the built-in defaults."""
from __future__ import annotations

import operator as op
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts.values import WATCHABLE
from monitor.db import AlertRule
from monitor.settings import Settings

Severity = Literal["info", "warning", "critical"]
Operator = Literal[">", ">=", "<", "<=", "==", "!="]
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt, ">=": op.ge, "<": op.lt, "<=": op.le, "==": op.eq, "!=": op.ne}
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
SUMMARY_FIELDS = {"value", "threshold", "target", "project", "rule", "metric", "severity"}
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$"


class RuleInput(BaseModel):
    """A rule as the API accepts it; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as declared

    name: str = Field(pattern=NAME_PATTERN)
    metric: str = Field(json_schema_extra={"enum": sorted(WATCHABLE)})
    operator: Operator
    threshold: float
    clear_threshold: float | None = None
    for_seconds: float = Field(default=0.0, ge=0)
    keep_firing_seconds: float = Field(default=0.0, ge=0)
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str | None = None
    project_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    target_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    enabled: bool = True

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in WATCHABLE:
            raise ValueError(f"unknown metric {value!r}; see GET /monitoring/redis/alerts/metrics")
        return value

    @field_validator("summary")
    @classmethod
    def _summary_fields(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value)
        return value

    @model_validator(mode="after")
    def _clear_beyond_threshold(self) -> RuleInput:
        check_clear_threshold(self.operator, self.threshold, self.clear_threshold)
        return self


class RulePatch(BaseModel):
    """A partial change of a rule; fields that cannot be empty refuse an explicit null."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as declared

    # Typed without None so `null` is refused; the None default only means "not given".
    name: str = Field(default=None, pattern=NAME_PATTERN)  # type: ignore[assignment]
    metric: str = Field(default=None,  # type: ignore[assignment]
                        json_schema_extra={"enum": sorted(WATCHABLE)})
    operator: Operator = None  # type: ignore[assignment]
    threshold: float = None  # type: ignore[assignment]
    clear_threshold: float | None = None
    for_seconds: float = Field(default=None, ge=0)  # type: ignore[assignment]
    keep_firing_seconds: float = Field(default=None, ge=0)  # type: ignore[assignment]
    severity: Severity = None  # type: ignore[assignment]
    labels: dict[str, str] = None  # type: ignore[assignment]
    summary: str | None = None
    project_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    target_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    enabled: bool = None  # type: ignore[assignment]

    _metric = field_validator("metric")(RuleInput._known_metric.__func__)  # type: ignore[attr-defined]
    _summary = field_validator("summary")(RuleInput._summary_fields.__func__)  # type: ignore[attr-defined]


def check_template(template: str) -> None:
    """Refuse a summary template with unknown or malformed {fields}."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:
        raise ValueError(f"summary is not a valid template: {exc}") from None
    unknown = names - SUMMARY_FIELDS
    if unknown:
        raise ValueError(f"summary uses unknown field(s) {sorted(unknown)}; "
                         f"allowed: {sorted(SUMMARY_FIELDS)}")


def check_clear_threshold(operator: str, threshold: float, clear: float | None) -> None:
    """A clear threshold must lie on the safe side of the threshold (the hysteresis band)."""
    if clear is None or operator in ("==", "!="):
        if clear is not None:
            raise ValueError("clear_threshold needs an ordering operator (<, <=, >, >=)")
        return
    if operator in (">", ">=") and clear > threshold:
        raise ValueError("clear_threshold must not be above threshold for operator "
                         f"{operator!r}")
    if operator in ("<", "<=") and clear < threshold:
        raise ValueError("clear_threshold must not be below threshold for operator "
                         f"{operator!r}")


@dataclass(frozen=True)
class Condition:
    """The firing and clearing tests of a rule."""

    operator: str
    threshold: float
    clear_threshold: float | None

    def fires(self, value: float) -> bool:
        return OPERATORS[self.operator](value, self.threshold)

    def clears(self, value: float) -> bool:
        """True once the value is back past the clear threshold (or simply not firing)."""
        if self.clear_threshold is None:
            return not self.fires(value)
        return not OPERATORS[self.operator](value, self.clear_threshold)


def render_summary(template: str, **values: Any) -> str:
    """Fill a summary template; numbers are shown with at most 4 significant digits."""
    shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in values.items()}
    return template.format(**{k: shown.get(k, "") for k in SUMMARY_FIELDS})


def default_summary(operator: str) -> str:
    """A summary template for a rule created without one."""
    return "{rule}: {metric} is {value} (" + operator + " {threshold}) on {project}/{target}"


def builtin_rules(s: Settings) -> list[dict[str, Any]]:
    """The default rules, with thresholds from the settings."""
    interval = s.metrics_collection_interval
    memory = {"category": "memory"}
    return [
        _rule("redis_down", "up", "<", 1, None, 60, "critical",
              "{project}/{target} is down: the last probe failed", {"category": "availability"}),
        _rule("redis_stale_data", "sample_age_seconds", ">", 3 * interval, None, 0, "warning",
              "No fresh data from {project}/{target} for {value} s", {"category": "availability"}),
        _rule("redis_memory_warning", "memory_percentage", ">", s.memory_warning_threshold,
              s.memory_warning_threshold - 5, 120, "warning",
              "Memory at {value} % on {project}/{target}", memory),
        _rule("redis_memory_critical", "memory_percentage", ">", s.memory_critical_threshold,
              s.memory_critical_threshold - 5, 120, "critical",
              "Memory at {value} % on {project}/{target}", memory),
        _rule("redis_response_time_warning", "response_time_p95_ms", ">",
              s.response_time_warning_threshold, None, 120, "warning",
              "P95 response time {value} ms on {project}/{target}"),
        _rule("redis_response_time_critical", "response_time_p95_ms", ">",
              s.response_time_critical_threshold, None, 120, "critical",
              "P95 response time {value} ms on {project}/{target}"),
        _rule("redis_slow_commands", "slow_commands_in_window", ">", 0, None, 0, "warning",
              f"{{value}} command(s) slower than {s.slow_command_threshold:g} ms on "
              "{project}/{target}"),
        _rule("redis_connection_pool_warning", "connection_utilization", ">",
              s.connection_pool_warning_threshold / 100, None, 120, "warning",
              "Clients at {value} of maxclients on {project}/{target}"),
        _rule("redis_connection_pool_critical", "connection_utilization", ">",
              s.connection_pool_critical_threshold / 100, None, 120, "critical",
              "Clients at {value} of maxclients on {project}/{target}"),
        _rule("redis_error_rate", "error_rate_percentage", ">", s.error_rate_threshold, None,
              300, "warning", "Error replies at {value} % of commands on {project}/{target}"),
        _rule("redis_hit_rate_warning", "hit_rate", "<", s.hit_rate_warning_threshold / 100,
              min(1.0, s.hit_rate_warning_threshold / 100 + 0.05), 600, "warning",
              "Hit rate {value} on {project}/{target}"),
        _rule("redis_hit_rate_critical", "hit_rate", "<", s.hit_rate_critical_threshold / 100,
              min(1.0, s.hit_rate_critical_threshold / 100 + 0.05), 600, "critical",
              "Hit rate {value} on {project}/{target}"),
        _rule("redis_persistence_failure", "rdb_last_bgsave_status", "<", 1, None, 0,
              "critical", "The last BGSAVE failed on {project}/{target}"),
        _rule("redis_replication_link_down", "master_link_up", "<", 1, None, 120, "critical",
              "Replica {project}/{target} lost its master link"),
        _rule("redis_rejected_connections", "rejected_connections_increase", ">", 0, None, 0,
              "warning", "{value} connection(s) rejected on {project}/{target} (maxclients)"),
        _rule("redis_evictions", "evicted_keys_per_second", ">", 0, None, 300, "info",
              "{value} evictions/s on {project}/{target}"),
    ]


def _rule(name: str, metric: str, operator: str, threshold: float, clear: float | None,
          for_seconds: float, severity: str, summary: str,
          labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "metric": metric, "operator": operator, "threshold": float(threshold),
            "clear_threshold": clear, "for_seconds": float(for_seconds),
            "keep_firing_seconds": 0.0, "severity": severity, "summary": summary,
            "labels": labels or {}}


def sync_builtin_rules(session: Session, settings: Settings, now: datetime) -> None:
    """Create missing built-in rules; keep untouched ones in step with the settings."""
    existing = {r.name: r for r in session.scalars(select(AlertRule).where(AlertRule.builtin))}
    for spec in builtin_rules(settings):
        rule = existing.get(spec["name"])
        if rule is None:
            session.add(AlertRule(**spec, builtin=True, customized=False, enabled=True,
                                  created_at=now, updated_at=now))
        elif not rule.customized:
            for key, value in spec.items():
                setattr(rule, key, value)
    session.flush()


def rule_view(rule: AlertRule) -> dict[str, Any]:
    """Describe a rule for the API."""
    return {k: getattr(rule, k) for k in (
        "id", "name", "metric", "operator", "threshold", "clear_threshold", "for_seconds",
        "keep_firing_seconds", "severity", "labels", "summary", "project_id", "target_id",
        "enabled", "builtin", "customized")} | {
        "created_at": rule.created_at.isoformat(), "updated_at": rule.updated_at.isoformat()}
