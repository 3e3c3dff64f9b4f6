"""Run health checks against targets, guarded by the shared circuit breaker, and store them."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.collect import ClientCache, parse_info
from monitor.db import CircuitBreaker, HealthResult, Project, Target, insert_for, transaction
from monitor.health.breaker import (
    BreakerPolicy,
    BreakerState,
    CircuitState,
    after_failure,
    after_success,
    may_probe,
)
from monitor.health.checks import (
    CheckResult,
    HealthCheckType,
    Observation,
    Thresholds,
    judge,
    unreachable,
    worst,
)
from monitor.history import latest_views
from monitor.measures import hit_rate
from monitor.settings import Settings

BURST_PROBES = 10
HEALTH_KEY_TTL_MS = 10_000
HIT_RATE_WINDOW = timedelta(minutes=5)
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


# --- the breaker in the database ----------------------------------------------------------


def _load_breaker(session: Session, target_id: int, now: datetime) -> CircuitBreaker:
    row = session.get(CircuitBreaker, target_id, with_for_update=True)
    if row is None:
        session.execute(insert_for(session, CircuitBreaker).values(
            target_id=target_id, state="closed", failures=0, times_opened=0, updated_at=now,
        ).on_conflict_do_nothing(index_elements=["target_id"]))
        row = session.get(CircuitBreaker, target_id, with_for_update=True)
        assert row is not None
    return row


def _state_of(row: CircuitBreaker) -> BreakerState:
    return BreakerState(CircuitState(row.state), row.failures, row.times_opened,
                        row.next_probe_at, row.last_error)


def _save(row: CircuitBreaker, state: BreakerState, now: datetime) -> None:
    row.state, row.failures, row.times_opened = str(state.state), state.failures, \
        state.times_opened
    row.next_probe_at, row.last_error, row.updated_at = state.next_probe_at, state.last_error, now


def breaker_allows_in(session: Session, target_id: int, now: datetime) -> bool:
    """Ask the breaker inside the caller's transaction (half-opening it if due)."""
    row = _load_breaker(session, target_id, now)
    allowed, state = may_probe(_state_of(row), now)
    if state != _state_of(row):
        _save(row, state, now)
    return allowed


def breaker_record_in(session: Session, target_id: int, now: datetime, error: str | None,
                      policy: BreakerPolicy) -> BreakerState:
    """Tell the breaker how a probe went, inside the caller's transaction; write only changes."""
    row = _load_breaker(session, target_id, now)
    current = _state_of(row)
    state = after_success(current) if error is None else after_failure(
        current, now, error, policy)
    if state != current:
        _save(row, state, now)
    return state


def breaker_allows(sessions: sessionmaker[Session], target_id: int, now: datetime) -> bool:
    """Ask the shared breaker whether this probe may touch the target."""
    with transaction(sessions) as session:
        return breaker_allows_in(session, target_id, now)


def breaker_report(sessions: sessionmaker[Session], target_id: int, now: datetime,
                   error: str | None, policy: BreakerPolicy) -> BreakerState:
    """Tell the shared breaker how a probe went."""
    with transaction(sessions) as session:
        return breaker_record_in(session, target_id, now, error, policy)


def breaker_view(row: CircuitBreaker | None) -> dict[str, Any]:
    """Describe a breaker for people."""
    if row is None:
        return {"state": "closed", "failures": 0, "next_probe_at": None, "last_error": None}
    return {"state": row.state, "failures": row.failures, "times_opened": row.times_opened,
            "next_probe_at": row.next_probe_at.isoformat() if row.next_probe_at else None,
            "last_error": row.last_error}


def policy_of(settings: Settings) -> BreakerPolicy:
    """Build the breaker policy from REDIS_MAX_RETRIES and REDIS_RETRY_DELAY."""
    return BreakerPolicy(settings.redis_max_retries, settings.redis_retry_delay)


# --- observing a target -------------------------------------------------------------------


def _timed(func: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = func()
    return value, (time.perf_counter() - started) * 1000.0


def _read_write(client: redis.Redis, writable: bool) -> tuple[str, str | None, float]:
    key = f"redismon:health:{uuid.uuid4().hex}"
    if not writable:
        _, ms = _timed(lambda: client.get(key))
        return "read_only", None, ms
    pipe = client.pipeline(transaction=False)
    pipe.set(key, "1", px=HEALTH_KEY_TTL_MS)
    pipe.get(key)
    pipe.delete(key)
    replies, ms = _timed(lambda: pipe.execute(raise_on_error=False))
    errors = [r for r in replies if isinstance(r, Exception)]
    if errors:
        return "read_write", str(errors[0]).splitlines()[0][:200], ms
    if replies[1] != "1":
        return "read_write", "the value read back differs from the value written", ms
    return "read_write", None, ms


def observe(client: redis.Redis, *, read_only: bool, burst: int = BURST_PROBES) -> Observation:
    """Look at a target: PING, INFO, a write/read/delete (or a read), a burst of timed PINGs."""
    _, ping_ms = _timed(client.ping)
    raw, info_ms = _timed(lambda: client.execute_command("INFO"))
    info = parse_info(raw)
    writable = not read_only and info.get("role") == "master"
    mode, rw_error, rw_ms = _read_write(client, writable)
    burst_ms = [_timed(client.ping)[1] for _ in range(burst)]
    pool = client.connection_pool
    in_use = len(getattr(pool, "_in_use_connections", ()))
    return Observation(info, ping_ms, info_ms, mode, rw_error, rw_ms, burst_ms, in_use,
                       int(getattr(pool, "max_connections", 0) or 0))


# --- reports --------------------------------------------------------------------------------


@dataclass
class HealthReport:
    target_id: int
    target: str
    project: str
    checked_at: datetime
    checks: list[CheckResult]
    circuit: dict[str, Any]

    @property
    def status(self) -> str:
        return str(worst([c.status for c in self.checks]))

    @property
    def response_time_ms(self) -> float:
        return round(sum(c.response_time_ms for c in self.checks), 3)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape of the API."""
        return {"target_id": self.target_id, "target": self.target, "project": self.project,
                "status": self.status, "checked_at": self.checked_at.isoformat(),
                "response_time_ms": self.response_time_ms,
                "checks": {str(c.check): c.to_dict() for c in self.checks},
                "circuit": self.circuit}


def _previous_rejected(session: Session, target_id: int) -> int | None:
    latest = session.scalar(select(HealthResult).where(HealthResult.target_id == target_id)
                            .order_by(HealthResult.checked_at.desc()).limit(1))
    for check in latest.checks if latest else []:
        if check.get("check") == "connection_pool":
            value = check.get("details", {}).get("rejected_connections")
            return int(value) if value is not None else None
    return None


def _window_hit_rate(session: Session, target_id: int, now: datetime) -> float | None:
    views = latest_views(session, now, HIT_RATE_WINDOW, target_id=target_id)
    if not views or views[0].latest is None or not views[0].latest.up:
        return None
    start = views[0].window_start
    return hit_rate(start.data if start else None, views[0].latest.data)


def check_target(sessions: sessionmaker[Session], clients: ClientCache, target_id: int,
                 now: datetime, settings: Settings,
                 only: HealthCheckType | None = None) -> HealthReport | None:
    """Run the checks of one target now, through the breaker; None if the target is gone."""
    with sessions() as session:
        found = session.execute(select(Target, Project.name).join(Project)
                                .where(Target.id == target_id)).first()
        if found is None:
            return None
        target, project = found
        previous_rejected = _previous_rejected(session, target_id)
        window_hit = _window_hit_rate(session, target_id, now)
    thresholds = Thresholds.from_settings(settings)
    if not breaker_allows(sessions, target_id, now):
        checks = _circuit_open(sessions, target_id, only)
    else:
        checks = _probe_and_judge(sessions, clients, target, now, settings, thresholds,
                                  previous_rejected, window_hit, only)
    with sessions() as session:
        circuit = breaker_view(session.get(CircuitBreaker, target_id))
    return HealthReport(target_id, target.name, project, now, checks, circuit)


def _circuit_open(sessions: sessionmaker[Session], target_id: int,
                  only: HealthCheckType | None) -> list[CheckResult]:
    with sessions() as session:
        row = session.get(CircuitBreaker, target_id)
    assert row is not None
    message = (f"circuit open after {row.failures} consecutive failures ({row.last_error}); "
               f"no probe until {row.next_probe_at.isoformat() if row.next_probe_at else '?'}")
    return unreachable("CircuitOpen", only, message)


def _probe_and_judge(sessions: sessionmaker[Session], clients: ClientCache, target: Target,
                     now: datetime, settings: Settings, thresholds: Thresholds,
                     previous_rejected: int | None, window_hit: float | None,
                     only: HealthCheckType | None) -> list[CheckResult]:
    try:
        obs = observe(clients.get(target.url), read_only=target.read_only)
    except CONNECTION_ERRORS as exc:
        breaker_report(sessions, target.id, now, type(exc).__name__, policy_of(settings))
        return unreachable(type(exc).__name__, only)
    except redis.ResponseError as exc:
        breaker_report(sessions, target.id, now, None, policy_of(settings))
        return unreachable(f"refused: {str(exc).splitlines()[0][:100]}", only)
    breaker_report(sessions, target.id, now, None, policy_of(settings))
    obs.previous_rejected, obs.window_hit_rate = previous_rejected, window_hit
    return judge(obs, thresholds, now.timestamp(), only)


def store_report(sessions: sessionmaker[Session], report: HealthReport, slot: int) -> bool:
    """Store a full report once per target and slot; False if the slot was already written."""
    with transaction(sessions) as session:
        stmt = insert_for(session, HealthResult).values(
            target_id=report.target_id, slot=slot, checked_at=report.checked_at,
            status=report.status, response_time_ms=report.response_time_ms,
            checks=[c.to_dict() for c in report.checks],
        ).on_conflict_do_nothing(index_elements=["target_id", "slot"])
        return bool(session.execute(stmt).rowcount)


def latest_reports(session: Session, project_id: int | None = None,
                   target_name: str | None = None) -> list[dict[str, Any]]:
    """Return the latest stored report of each enabled target (unknown when none yet)."""
    query = (select(Target, Project.name).join(Project).where(Target.enabled.is_(True))
             .order_by(Project.name, Target.name))
    if project_id is not None:
        query = query.where(Target.project_id == project_id)
    if target_name is not None:
        query = query.where(Target.name == target_name)
    reports = []
    for target, project in session.execute(query).all():
        latest = session.scalar(select(HealthResult).where(HealthResult.target_id == target.id)
                                .order_by(HealthResult.checked_at.desc()).limit(1))
        circuit = breaker_view(session.get(CircuitBreaker, target.id))
        reports.append(_stored_report(target, project, latest, circuit))
    return reports


def _stored_report(target: Target, project: str, latest: HealthResult | None,
                   circuit: dict[str, Any]) -> dict[str, Any]:
    if latest is None:
        return {"target_id": target.id, "target": target.name, "project": project,
                "status": "unknown", "checked_at": None, "response_time_ms": None,
                "checks": {}, "circuit": circuit, "message": "no health check has run yet"}
    return {"target_id": target.id, "target": target.name, "project": project,
            "status": latest.status, "checked_at": latest.checked_at.isoformat(),
            "response_time_ms": latest.response_time_ms,
            "checks": {c["check"]: c for c in latest.checks}, "circuit": circuit}
