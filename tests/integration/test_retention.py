"""Retention deletes raw history past RETENTION_RAW_DAYS and keeps what is still needed."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from monitor.collect import ClientCache
from monitor.db import HealthResult, Sample, transaction
from monitor.jobs import collect_target
from monitor.retention import prune
from monitor.runtime import Runtime
from monitor.targets import add_target
from tests.support.clock import ManualClock
from tests.support.servers import RedisServer


def _count(rt: Runtime, model: type) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_old_samples_go_and_the_latest_stays(pg_runtime: Runtime,
                                              redis_server: RedisServer) -> None:
    start = datetime.now(UTC) - timedelta(days=10)
    with transaction(pg_runtime.sessions) as session:
        target_id = add_target(session, project="old", name="cache", url=redis_server.url,
                               now=start).id
        session.add_all([HealthResult(target_id=target_id, slot=i, checked_at=start,
                                      status="healthy", response_time_ms=1.0, checks=[])
                         for i in range(3)])
    clock = ManualClock(start)
    cache = ClientCache(2, 2, 10)
    for slot in range(1, 6):  # five samples, ten days ago
        collect_target(pg_runtime.sessions, cache, target_id, slot, clock, 10)
        clock.advance(10)
    cache.close()
    samples_before = _count(pg_runtime, Sample)
    pruned = prune(pg_runtime.sessions, datetime.now(UTC), raw_days=7)
    assert pruned.samples == 4 and pruned.health_results == 3
    assert _count(pg_runtime, Sample) == samples_before - 4
    with pg_runtime.sessions() as session:
        kept = session.scalars(select(Sample).where(Sample.target_id == target_id)).all()
    assert [s.slot for s in kept] == [5]  # the latest sample of a quiet target is kept
    assert prune(pg_runtime.sessions, datetime.now(UTC), raw_days=7).samples == 0
