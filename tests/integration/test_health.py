"""Health checks and the circuit breaker against spawned Redis servers and PostgreSQL."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.collect import ClientCache
from monitor.db import CircuitBreaker, Sample, transaction
from monitor.health.checks import HealthCheckType
from monitor.health.service import HealthReport, check_target, policy_of
from monitor.jobs import collect_target
from monitor.runtime import Runtime
from monitor.targets import add_target
from tests.support.clock import ManualClock
from tests.support.servers import RedisServer, wait_until


class CountingListener:
    """A TCP listener on a stopped Redis's port that counts and drops every connection."""

    def __init__(self, port: int) -> None:
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture
def clients() -> Iterator[ClientCache]:
    cache = ClientCache(2.0, 2.0, 10)
    yield cache
    cache.close()


def _runtime(rt: Runtime, **settings: object) -> Runtime:
    return replace(rt, settings=replace(rt.settings, **settings))


def _add(rt: Runtime, server_url: str, name: str, read_only: bool = False) -> int:
    with transaction(rt.sessions) as session:
        return add_target(session, project="health", name=name, url=server_url,
                          now=datetime.now(UTC), read_only=read_only).id


def _check(rt: Runtime, clients: ClientCache, target_id: int, clock: ManualClock,
           only: HealthCheckType | None = None) -> HealthReport:
    report = check_target(rt.sessions, clients, target_id, clock(), rt.settings, only)
    assert report is not None
    return report


def _status(report: HealthReport, check: HealthCheckType) -> str:
    (result,) = [c for c in report.checks if c.check == check]
    return str(result.status)


def test_a_fresh_server_is_healthy_on_every_check(
        pg_runtime: Runtime, redis_server: RedisServer, clients: ClientCache) -> None:
    target_id = _add(pg_runtime, redis_server.url, "fresh")
    report = _check(pg_runtime, clients, target_id, ManualClock())
    assert {str(c.check): str(c.status) for c in report.checks} == {
        t.value: "healthy" for t in HealthCheckType}
    assert report.status == "healthy" and report.circuit["state"] == "closed"
    performance = report.to_dict()["checks"]["performance"]["details"]
    assert performance["probes"] == 10 and performance["p50_ms"] <= performance["p99_ms"]
    # The write probe cleans up after itself.
    assert redis_server.client().keys("redismon:health:*") == []


def test_breaker_opens_blocks_probes_and_closes_after_restart(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    rt = _runtime(pg_runtime, redis_max_retries=3, redis_retry_delay=5.0)
    server = redis_factory()
    target_id = _add(rt, server.url, "breaker")
    clock = ManualClock()
    assert _check(rt, clients, target_id, clock).status == "healthy"

    server.stop()
    listener = CountingListener(server.port)
    try:
        for attempt in range(1, 4):
            clock.advance(1)
            report = _check(rt, clients, target_id, clock)
            assert report.status == "unhealthy"
            assert _status(report, HealthCheckType.CONNECTIVITY) == "unhealthy"
            assert listener.accepted == attempt
        assert report.circuit["state"] == "open"
        # While open: neither health checks nor collections touch the target.
        for slot in (1, 2, 3):
            clock.advance(1)
            assert _check(rt, clients, target_id, clock).status == "unhealthy"
            outcome = collect_target(rt.sessions, clients, target_id, slot, clock, 1e-6,
                                     policy_of(rt.settings))
            assert outcome.up is False
        assert listener.accepted == 3
        with rt.sessions() as session:
            errors = list(session.scalars(select(Sample.error).where(
                Sample.target_id == target_id)))
        assert errors == ["CircuitOpen"] * 3
    finally:
        listener.close()

    server.start()
    clock.advance(5)  # the first cooldown is REDIS_RETRY_DELAY
    report = _check(rt, clients, target_id, clock)
    assert report.status == "healthy"
    assert report.circuit["state"] == "closed" and report.circuit["failures"] == 0


def test_a_failed_half_open_probe_doubles_the_cooldown(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    rt = _runtime(pg_runtime, redis_max_retries=1, redis_retry_delay=2.0)
    server = redis_factory()
    target_id = _add(rt, server.url, "cooldown")
    server.stop()
    clock = ManualClock()
    _check(rt, clients, target_id, clock)
    with rt.sessions() as session:
        first = session.get(CircuitBreaker, target_id)
        assert first is not None and first.state == "open"
        assert first.next_probe_at == clock() + timedelta(seconds=2)
    clock.advance(2)
    _check(rt, clients, target_id, clock)  # the half-open probe fails
    with rt.sessions() as session:
        second = session.get(CircuitBreaker, target_id)
        assert second is not None and second.state == "open" and second.times_opened == 2
        assert second.next_probe_at == clock() + timedelta(seconds=4)


def test_memory_degraded_past_80_and_unhealthy_past_90_percent(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    server = redis_factory()
    client = server.client()
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(used * 2))
    target_id = _add(pg_runtime, server.url, "memory")
    clock = ManualClock()
    check = HealthCheckType.MEMORY_USAGE
    assert _status(_check(pg_runtime, clients, target_id, clock, check), check) == "healthy"
    server.fill_memory(85)
    report = _check(pg_runtime, clients, target_id, clock, check)
    assert _status(report, check) == "degraded", report.checks[0].message
    assert "of maxmemory" in report.checks[0].message
    server.fill_memory(95)
    assert _status(_check(pg_runtime, clients, target_id, clock, check), check) == "unhealthy"


def test_maxmemory_zero_is_measured_against_system_memory(
        pg_runtime: Runtime, redis_server: RedisServer, clients: ClientCache) -> None:
    target_id = _add(pg_runtime, redis_server.url, "nolimit")
    check = HealthCheckType.MEMORY_USAGE
    (result,) = _check(pg_runtime, clients, target_id, ManualClock(), check).checks
    assert str(result.status) == "healthy"
    assert "system memory (maxmemory is 0" in result.message
    assert result.details["basis"] == "system_memory" and result.details["limit_bytes"] > 0


def test_a_failed_bgsave_makes_persistence_unhealthy(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    server = redis_factory("--enable-protected-configs", "yes")
    client = server.client()
    # Root can write anywhere, so make the rename fail: the dump file name is a directory.
    (Path(server.directory) / "blocked.rdb").mkdir()
    client.config_set("dbfilename", "blocked.rdb")
    client.set("k", "v")
    client.bgsave()
    wait_until(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0, 10)
    assert client.info("persistence")["rdb_last_bgsave_status"] == "err"
    target_id = _add(pg_runtime, server.url, "persistence")
    check = HealthCheckType.PERSISTENCE
    (result,) = _check(pg_runtime, clients, target_id, ManualClock(), check).checks
    assert str(result.status) == "unhealthy" and "BGSAVE failed" in result.message


def test_replica_is_healthy_then_unhealthy_when_its_master_stops(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    master = redis_factory()
    replica = redis_factory("--replicaof", "127.0.0.1", str(master.port))
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", 20)
    target_id = _add(pg_runtime, replica.url, "replica")
    check = HealthCheckType.REPLICATION
    clock = ManualClock()
    report = _check(pg_runtime, clients, target_id, clock)
    assert _status(report, check) == "healthy"
    assert _status(report, HealthCheckType.CONNECTIVITY) == "healthy"
    connectivity = [c for c in report.checks if c.check == HealthCheckType.CONNECTIVITY][0]
    assert connectivity.details["mode"] == "read_only"
    master.stop()
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "down", 20)
    (result,) = _check(pg_runtime, clients, target_id, clock, check).checks
    assert str(result.status) == "unhealthy" and "is down" in result.message


def test_a_read_only_target_is_never_written(
        pg_runtime: Runtime, redis_factory: Callable[..., RedisServer],
        clients: ClientCache) -> None:
    server = redis_factory()
    target_id = _add(pg_runtime, server.url, "readonly", read_only=True)
    report = _check(pg_runtime, clients, target_id, ManualClock())
    assert report.status == "healthy"
    commandstats = server.client().info("commandstats")
    assert "cmdstat_set" not in commandstats and "cmdstat_del" not in commandstats
