"""Collection against a spawned redis-server, stored in PostgreSQL and SQLite."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from monitor.collect import ClientCache
from monitor.db import Sample, SlowlogEntry, TargetState, transaction
from monitor.jobs import collect_target
from monitor.runtime import Runtime
from monitor.targets import add_target
from tests.support.clock import ManualClock
from tests.support.servers import RedisServer, free_port

INTERVAL = 10.0




@pytest.fixture(scope="module")
def clients() -> ClientCache:
    cache = ClientCache(2.0, 2.0, 10)
    yield cache
    cache.close()


def _target(rt: Runtime, url: str, name: str) -> int:
    with transaction(rt.sessions) as session:
        return add_target(session, project="itest", name=name, url=url,
                          now=datetime.now(UTC)).id


def _samples(rt: Runtime, target_id: int) -> list[Sample]:
    with rt.sessions() as session:
        return list(session.scalars(
            select(Sample).where(Sample.target_id == target_id).order_by(Sample.collected_at)))


def test_collection_stores_a_sample_with_the_catalogue_fields(
        pg_runtime: Runtime, redis_server: RedisServer, clients: ClientCache) -> None:
    client = redis_server.client()
    client.set("k", "v")
    client.get("k")
    target_id = _target(pg_runtime, redis_server.url, "basic")
    clock = ManualClock()
    before = int(client.info("memory")["used_memory"])
    outcome = collect_target(pg_runtime.sessions, clients, target_id, 1, clock, INTERVAL)
    after = int(client.info("memory")["used_memory"])
    assert outcome.status == "stored" and outcome.up is True
    (sample,) = _samples(pg_runtime, target_id)
    assert sample.up and sample.error is None
    # The probe's own new connection moves used_memory a little between the readings.
    assert min(before, after) * 0.95 <= sample.data["f"]["used_memory"] <= max(before, after) * 1.05
    assert sample.data["f"]["maxclients"] > 0
    assert sample.data["cmd"]["set"][0] >= 1
    assert sample.data["s"]["role"] == "master"
    assert sample.probe_seconds is not None and sample.probe_seconds > 0


def test_a_second_task_for_the_same_slot_writes_nothing(
        pg_runtime: Runtime, redis_server: RedisServer, clients: ClientCache) -> None:
    target_id = _target(pg_runtime, redis_server.url, "idempotent")
    clock = ManualClock()
    assert collect_target(pg_runtime.sessions, clients, target_id, 7, clock, INTERVAL).status \
        == "stored"
    # Another beat's task shortly after: the claim turns it away before it touches Redis.
    clock.advance(1)
    assert collect_target(pg_runtime.sessions, clients, target_id, 7, clock, INTERVAL).status \
        == "claimed"
    # A redelivered task after the claim expired: the (target, slot) constraint turns it away.
    clock.advance(INTERVAL)
    assert collect_target(pg_runtime.sessions, clients, target_id, 7, clock, INTERVAL).status \
        == "duplicate"
    clock.advance(INTERVAL)
    assert collect_target(pg_runtime.sessions, clients, target_id, 8, clock, INTERVAL).status \
        == "stored"
    assert [s.slot for s in _samples(pg_runtime, target_id)] == [7, 8]


def test_an_unreachable_target_gets_an_up_zero_sample(
        pg_runtime: Runtime, clients: ClientCache) -> None:
    target_id = _target(pg_runtime, f"redis://127.0.0.1:{free_port()}/0", "nobody-home")
    outcome = collect_target(pg_runtime.sessions, clients, target_id, 1, ManualClock(), INTERVAL)
    assert outcome.status == "stored" and outcome.up is False
    (sample,) = _samples(pg_runtime, target_id)
    assert not sample.up and sample.error == "ConnectionError" and sample.data == {}
    with pg_runtime.sessions() as session:
        state = session.get(TargetState, target_id)
        assert state is not None and state.up is False and state.error == "ConnectionError"


def test_a_refused_command_is_remembered_and_not_sent_again(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    # Managed Redis often disables LATENCY; rename-command "" removes it entirely.
    server = redis_factory("--rename-command", "LATENCY", "")
    target_id = _target(pg_runtime, server.url, "managed")
    clock = ManualClock()
    collect_target(pg_runtime.sessions, clients, target_id, 1, clock, INTERVAL)
    errors_after_first = server.client().info("stats")["total_error_replies"]
    with pg_runtime.sessions() as session:
        assert session.get(TargetState, target_id).refused_commands == ["latency_latest"]
    for slot in (2, 3, 4):
        clock.advance(INTERVAL)
        assert collect_target(pg_runtime.sessions, clients, target_id, slot, clock,
                              INTERVAL).up is True
    assert server.client().info("stats")["total_error_replies"] == errors_after_first
    assert len(_samples(pg_runtime, target_id)) == 4


def test_new_slowlog_entries_are_stored_once_without_arguments(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    server = redis_factory("--slowlog-log-slower-than", "0")
    client = server.client()
    client.set("secret-key", "secret-value")
    target_id = _target(pg_runtime, server.url, "slow")
    clock = ManualClock()
    for slot in (1, 2, 3):
        collect_target(pg_runtime.sessions, clients, target_id, slot, clock, INTERVAL)
        clock.advance(INTERVAL)
    with pg_runtime.sessions() as session:
        entries = list(session.scalars(select(SlowlogEntry).where(
            SlowlogEntry.target_id == target_id)))
        ids = [e.entry_id for e in entries]
    assert len(ids) == len(set(ids)) and len(ids) >= 3
    assert "set" in {e.command for e in entries}
    assert all("secret" not in (e.command or "") for e in entries)


def test_a_restart_is_seen_and_collection_resumes(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    server = redis_factory()
    target_id = _target(pg_runtime, server.url, "restarts")
    clock = ManualClock()
    assert collect_target(pg_runtime.sessions, clients, target_id, 1, clock, INTERVAL).up
    server.stop()
    clock.advance(INTERVAL)
    assert collect_target(pg_runtime.sessions, clients, target_id, 2, clock, INTERVAL).up is False
    server.start()
    clock.advance(INTERVAL)
    assert collect_target(pg_runtime.sessions, clients, target_id, 3, clock, INTERVAL).up is True
    samples = _samples(pg_runtime, target_id)
    assert [s.up for s in samples] == [True, False, True]
    assert samples[0].data["s"]["run_id"] != samples[2].data["s"]["run_id"]


def test_sqlite_history_works_the_same(
        sqlite_runtime: Runtime, redis_server: RedisServer, clients: ClientCache) -> None:
    target_id = _target(sqlite_runtime, redis_server.url, "embedded")
    clock = ManualClock()
    assert collect_target(sqlite_runtime.sessions, clients, target_id, 1, clock,
                          INTERVAL).status == "stored"
    clock.advance(INTERVAL)
    assert collect_target(sqlite_runtime.sessions, clients, target_id, 1, clock,
                          INTERVAL).status == "duplicate"
    with sqlite_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == 1
        sample = session.scalar(select(Sample))
        assert sample is not None and sample.collected_at.tzinfo is not None


def test_latencystats_once_a_minute_and_kept_on_the_state(
        pg_runtime: Runtime, redis_server: RedisServer, clients: ClientCache) -> None:
    target_id = _target(pg_runtime, redis_server.url, "latency")
    clock = ManualClock()
    fetched = []
    for slot in range(1, 9):  # 8 collections, 10 s apart
        redis_server.client().get("k")
        collect_target(pg_runtime.sessions, clients, target_id, slot, clock, INTERVAL)
        with pg_runtime.sessions() as session:
            state = session.get(TargetState, target_id)
            assert state is not None and state.latencystats
            fetched.append(state.latencystats_at)
        clock.advance(INTERVAL)
    assert len(set(fetched)) == 2  # at 0 s and at 60 s
    assert "get" in state.latencystats
    assert state.version and state.version.startswith("7")


def test_a_full_slowlog_page_asks_for_a_bigger_one(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    server = redis_factory("--slowlog-log-slower-than", "0")
    target_id = _target(pg_runtime, server.url, "busy")
    clock = ManualClock()
    collect_target(pg_runtime.sessions, clients, target_id, 1, clock, INTERVAL)
    for i in range(50):
        server.client().set(f"k{i}", i)
    clock.advance(INTERVAL)
    collect_target(pg_runtime.sessions, clients, target_id, 2, clock, INTERVAL)
    with pg_runtime.sessions() as session:
        assert session.get(TargetState, target_id).slowlog_fetch == 128
    clock.advance(INTERVAL)
    collect_target(pg_runtime.sessions, clients, target_id, 3, clock, INTERVAL)
    with pg_runtime.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(SlowlogEntry).where(
            SlowlogEntry.target_id == target_id))
        assert session.get(TargetState, target_id).slowlog_fetch == 10
    assert stored >= 50  # nothing lost between the small page and the big one
