"""Use cases the thin Celery tasks call: collection, dispatch, heartbeats, task runs."""
from __future__ import annotations

import functools
import os
import socket
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.evaluation import Outcome, evaluate_all
from monitor.collect import SLOWLOG_PAGE_SMALL, ClientCache, ProbePlan, ProbeResult, probe
from monitor.control import MONITORING, monitoring_enabled
from monitor.db import (
    CircuitBreaker,
    ControlFlag,
    Heartbeat,
    Lease,
    Target,
    TargetState,
    TaskRun,
    autocommit,
    core_update,
    insert_for,
    relax_commit,
    transaction,
)
from monitor.health.breaker import BreakerPolicy
from monitor.health.service import HealthReport, breaker_allows, breaker_record_in, check_target
from monitor.health.service import store_report as store_health_report
from monitor.history import StateSnapshot, ensure_state, record_probe
from monitor.settings import Settings

Clock = Callable[[], datetime]


def enabled_target_ids(sessions: sessionmaker[Session]) -> list[int]:
    """Return the ids of every enabled target, or none while monitoring is stopped."""
    with sessions() as session:
        if not monitoring_enabled(session):
            return []
        return list(session.scalars(select(Target.id).where(Target.enabled.is_(True))))


def claim(session: Session, target_id: int, now: datetime, interval: float,
          column: str = "claimed_until", state_exists: bool = False) -> bool:
    """Claim the target's next collection (or health check) with a conditional UPDATE."""
    if not state_exists:
        ensure_state(session, target_id)
    until = now + timedelta(seconds=interval / 2)
    result = session.execute(_claim_statement(column),
                             {"b_target_id": target_id, "now": now, "until": until})
    return bool(result.rowcount)


@functools.cache
def _claim_statement(column: str) -> Any:
    """UPDATE target_state SET column = :until WHERE it is free: built once per column."""
    table = TargetState.__table__.c
    held = table[column]
    return (core_update(TargetState)
            .where(table.target_id == bindparam("b_target_id"),
                   held.is_(None) | (held <= bindparam("now", type_=held.type)))
            .values({column: bindparam("until", type_=held.type)}))


@dataclass(frozen=True)
class CollectOutcome:
    target_id: int
    status: str  # "stored", "duplicate", "claimed", "skipped", "paused"
    sample_id: int | None = None
    up: bool | None = None


# Errors where the target answered: they say nothing about its reachability.
NOT_BREAKER_FAILURES = frozenset({"InfoRefused"})
LATENCYSTATS_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Collection:
    """Everything one collection needs, read in one query."""

    url: str
    plan: ProbePlan
    before: StateSnapshot
    breaker_clean: bool  # closed with no failure counted: nothing to tell it on success
    state_exists: bool


_STATE = TargetState.__table__.c
_READ_COLLECTION = (
    select(Target.url, Target.enabled, _STATE.target_id, _STATE.run_id, _STATE.last_slowlog_id,
           _STATE.refused_commands, _STATE.version, _STATE.latencystats_at,
           _STATE.slowlog_fetch, CircuitBreaker.state, CircuitBreaker.failures,
           ControlFlag.enabled)
    .outerjoin(TargetState, _STATE.target_id == Target.id)
    .outerjoin(CircuitBreaker, CircuitBreaker.target_id == Target.id)
    .outerjoin(ControlFlag, ControlFlag.name == MONITORING)
    .where(Target.id == bindparam("target_id"))
)


def _read_collection(session: Session, target_id: int, now: datetime) -> Collection | str:
    row = session.execute(_READ_COLLECTION, {"target_id": target_id}).first()
    if row is None or not row[1]:
        return "skipped"
    (url, _, state_id, run_id, last_slowlog_id, refused_list, version, latency_at,
     slowlog_fetch, breaker_state, failures, monitoring) = row
    if monitoring is False:
        return "paused"
    due = latency_at is None or now - latency_at >= LATENCYSTATS_EVERY
    refused = frozenset(refused_list or ())
    return Collection(
        url, ProbePlan(version, refused, due, slowlog_fetch or SLOWLOG_PAGE_SMALL),
        StateSnapshot(run_id, last_slowlog_id, refused),
        breaker_state in (None, "closed") and not failures, state_id is not None)


def collect_target(sessions: sessionmaker[Session], clients: ClientCache, target_id: int,
                   slot: int, clock: Clock, interval: float,
                   policy: BreakerPolicy | None = None) -> CollectOutcome:
    """Probe one target once and store the sample; safe to run twice for the same slot."""
    policy = policy or BreakerPolicy()
    now = clock()
    with autocommit(sessions) as session:  # one read and one conditional UPDATE: no BEGIN
        found = _read_collection(session, target_id, now)
        if isinstance(found, str):
            return CollectOutcome(target_id, found)
        if not claim(session, target_id, now, interval, state_exists=found.state_exists):
            return CollectOutcome(target_id, "claimed")
    allowed = found.breaker_clean or breaker_allows(sessions, target_id, now)
    if allowed:
        result = probe(clients.get(found.url), found.plan)
    else:
        result = ProbeResult(up=False, seconds=0.0, error="CircuitOpen")
    failed = not result.up and result.error not in NOT_BREAKER_FAILURES
    with transaction(sessions) as session:
        relax_commit(session)
        sample_id = record_probe(session, target_id, slot, now, result, found.before)
        if allowed and (failed or not found.breaker_clean):
            breaker_record_in(session, target_id, now, result.error if failed else None, policy)
    status = "stored" if sample_id is not None else "duplicate"
    return CollectOutcome(target_id, status, sample_id, result.up)


def health_target(sessions: sessionmaker[Session], clients: ClientCache, target_id: int,
                  slot: int, clock: Clock, settings: Settings) -> HealthReport | None:
    """Run and store the health checks of one target, unless paused or claimed by another."""
    with transaction(sessions) as session:
        if not monitoring_enabled(session):
            return None
        if not claim(session, target_id, clock(), settings.redis_health_check_interval,
                     "health_claimed_until"):
            return None
    report = check_target(sessions, clients, target_id, clock(), settings)
    if report is not None:
        store_health_report(sessions, report, slot)
    return report


HEARTBEAT_KEEP = timedelta(hours=1)


def claim_lease(sessions: sessionmaker[Session], name: str, now: datetime,
                seconds: float) -> bool:
    """Hold a named lease for `seconds`; False while someone else holds it."""
    with transaction(sessions) as session:
        session.execute(insert_for(session, Lease).values(
            name=name, held_until=now - timedelta(seconds=1),
        ).on_conflict_do_nothing(index_elements=["name"]))
        result = session.execute(update(Lease).where(Lease.name == name, Lease.held_until <= now)
                                 .values(held_until=now + timedelta(seconds=seconds)))
        return bool(result.rowcount)


def evaluate_alerts(sessions: sessionmaker[Session], settings: Settings,
                    clock: Clock) -> Outcome | None:
    """Run one alert evaluation unless paused or another beat's run holds the lease."""
    with sessions() as session:
        if not monitoring_enabled(session):
            return None
    if not claim_lease(sessions, "alerts.evaluate", clock(),
                       settings.alert_evaluation_interval / 2):
        return None
    with transaction(sessions) as session:
        return evaluate_all(session, settings, clock())


def beat_heartbeat(sessions: sessionmaker[Session], kind: str, now: datetime) -> None:
    """Record that this beat or worker process is alive; forget processes gone for an hour."""
    values = {"kind": kind, "hostname": socket.gethostname(), "pid": os.getpid(),
              "last_seen": now}
    with transaction(sessions) as session:
        stmt = insert_for(session, Heartbeat).values(values).on_conflict_do_update(
            index_elements=["kind", "hostname", "pid"], set_={"last_seen": now},
        )
        session.execute(stmt)
        session.execute(delete(Heartbeat).where(Heartbeat.last_seen < now - HEARTBEAT_KEEP))


@contextmanager
def recorded_run(sessions: sessionmaker[Session], name: str, clock: Clock) -> Iterator[None]:
    """Record the start, duration and error of a periodic task run."""
    started = clock()
    error: str | None = None
    try:
        yield
    except Exception as exc:
        error = "".join(traceback.format_exception_only(exc)).strip()[:500]
        raise
    finally:
        _store_run(sessions, name, started, clock(), error)


def _store_run(sessions: sessionmaker[Session], name: str, started: datetime,
               finished: datetime, error: str | None) -> None:
    values = {"name": name, "last_started_at": started, "last_finished_at": finished,
              "last_duration_seconds": (finished - started).total_seconds(),
              "last_error": error, "runs": 1}
    with transaction(sessions) as session:
        stmt = insert_for(session, TaskRun).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={k: stmt.excluded[k] for k in values if k not in ("name", "runs")}
            | {"runs": TaskRun.runs + 1},
        )
        session.execute(stmt)
