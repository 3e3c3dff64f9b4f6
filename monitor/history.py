"""Write samples idempotently and read the history back."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from monitor.collect import (
    SLOWLOG_PAGE_FULL,
    SLOWLOG_PAGE_SMALL,
    ProbeResult,
    SlowEntry,
    sample_document,
)
from monitor.db import (
    Project,
    Sample,
    SlowlogEntry,
    Target,
    TargetState,
    core_update,
    insert_for,
    insert_ignore,
)


def slot_for(now: datetime, interval: float) -> int:
    """Return the collection slot of a moment: one sample per target and slot."""
    return int(now.timestamp() // interval)


def ensure_state(session: Session, target_id: int) -> None:
    """Create the target's state row if it does not exist yet."""
    session.execute(insert_for(session, TargetState).values(
        target_id=target_id, up=False, refused_commands=[], slowlog_fetch=SLOWLOG_PAGE_SMALL,
    ).on_conflict_do_nothing(index_elements=["target_id"]))


@dataclass(frozen=True)
class StateSnapshot:
    """What a collection needs to know of the target's previous state."""

    run_id: str | None = None
    last_slowlog_id: int | None = None
    refused: frozenset[str] = frozenset()


def record_probe(session: Session, target_id: int, slot: int, now: datetime,
                 result: ProbeResult, before: StateSnapshot) -> int | None:
    """Store a probe as a sample unless the slot already has one; return the new sample id."""
    doc: dict[str, Any] = {}
    new_slow: list[SlowEntry] = []
    run_id = str(result.info.get("run_id", "")) or None
    if result.up:
        restarted = before.run_id is not None and run_id != before.run_id
        doc, new_slow = sample_document(result, None if restarted else before.last_slowlog_id)
    latencystats = doc.pop("lat", None)
    sample_id = session.execute(_insert_sample(session), {
        "target_id": target_id, "slot": slot, "collected_at": now, "up": result.up,
        "error": result.error, "probe_seconds": result.seconds, "data": doc,
    }).scalar_one_or_none()
    if sample_id is None:
        return None  # another worker or a redelivered task already wrote this slot
    _store_slowlog(session, target_id, run_id, new_slow)
    values = _next_state(sample_id, now, result, run_id, doc, before, new_slow)
    if latencystats:  # absent unless this probe asked for it
        values.update(latencystats=latencystats, latencystats_at=now)
    table = TargetState.__table__.c
    newer = table.last_collected_at.is_(None) | (table.last_collected_at < now)
    session.execute(core_update(TargetState).where(table.target_id == target_id, newer)
                    .values(values))
    return int(sample_id)


_INSERT_SAMPLE: dict[str, Any] = {}


def _insert_sample(session: Session) -> Any:
    """The sample INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect."""
    name = session.get_bind().dialect.name
    if name not in _INSERT_SAMPLE:
        _INSERT_SAMPLE[name] = insert_for(session, Sample).on_conflict_do_nothing(
            index_elements=["target_id", "slot"]).returning(Sample.__table__.c.id)
    return _INSERT_SAMPLE[name]


def _store_slowlog(session: Session, target_id: int, run_id: str | None,
                   entries: list[SlowEntry]) -> None:
    rows = [
        {"target_id": target_id, "run_id": run_id or "", "entry_id": e.entry_id,
         "started_at": datetime.fromtimestamp(e.started_at, UTC), "duration_us": e.duration_us,
         "command": e.command, "arg_count": e.arg_count, "client_addr": e.client_addr,
         "client_name": e.client_name}
        for e in entries
    ]
    insert_ignore(session, SlowlogEntry, rows, ["target_id", "run_id", "entry_id"])


def _next_state(sample_id: int, now: datetime, result: ProbeResult, run_id: str | None,
                doc: dict[str, Any], before: StateSnapshot,
                new_slow: list[SlowEntry]) -> dict[str, Any]:
    """The state row's new values; a late task never moves it backwards (see the caller)."""
    values: dict[str, Any] = {"last_sample_id": sample_id, "last_collected_at": now,
                              "up": result.up, "error": result.error}
    if not result.up:
        return values
    values.update(run_id=run_id, version=doc["s"].get("redis_version"),
                  refused_commands=sorted(before.refused | result.refused))
    fetched = len(result.replies.get("slowlog_get", []))
    # A page full of new entries may have missed some: ask for a big page next time.
    full_page = fetched >= SLOWLOG_PAGE_SMALL and len(new_slow) == fetched
    values["slowlog_fetch"] = SLOWLOG_PAGE_FULL if full_page else SLOWLOG_PAGE_SMALL
    if full_page and before.last_slowlog_id is not None and run_id == before.run_id:
        # Entries older than this page may be unseen: keep the mark, re-read with a big page
        # (entries already stored are skipped by their key).
        values["last_slowlog_id"] = before.last_slowlog_id
    elif "slowlog" in doc and "last_id" in doc["slowlog"]:
        values["last_slowlog_id"] = doc["slowlog"]["last_id"]
    elif run_id != before.run_id:
        values["last_slowlog_id"] = None
    return values


@dataclass(frozen=True)
class TargetView:
    """A target with its project name and latest samples, as the readers need it."""

    target: Target
    project: str
    state: TargetState | None
    latest: Sample | None
    window_start: Sample | None


def latest_views(session: Session, now: datetime, window: timedelta,
                 project_id: int | None = None, target_name: str | None = None,
                 target_id: int | None = None) -> list[TargetView]:
    """Return every enabled target with its latest sample and the oldest one in the window."""
    query = (
        select(Target, Project.name, TargetState, Sample)
        .join(Project, Project.id == Target.project_id)
        .outerjoin(TargetState, TargetState.target_id == Target.id)
        .outerjoin(Sample, Sample.id == TargetState.last_sample_id)
        .where(Target.enabled.is_(True))
        .order_by(Project.name, Target.name)
    )
    if project_id is not None:
        query = query.where(Target.project_id == project_id)
    if target_name is not None:
        query = query.where(Target.name == target_name)
    if target_id is not None:
        query = query.where(Target.id == target_id)
    rows = session.execute(query).all()
    starts = _window_starts(session, [r[0].id for r in rows], now - window)
    return [TargetView(t, p, s, latest, starts.get(t.id)) for t, p, s, latest in rows]


def _window_starts(session: Session, target_ids: list[int],
                   since: datetime) -> dict[int, Sample]:
    """Return, per target, the oldest successful sample collected since `since`."""
    if not target_ids:
        return {}
    first = (
        select(Sample.target_id, func.min(Sample.collected_at).label("at"))
        .where(Sample.target_id.in_(target_ids), Sample.collected_at >= since,
               Sample.up.is_(True))
        .group_by(Sample.target_id)
        .subquery()
    )
    query = select(Sample).join(
        first, and_(Sample.target_id == first.c.target_id, Sample.collected_at == first.c.at)
    )
    return {s.target_id: s for s in session.scalars(query)}
