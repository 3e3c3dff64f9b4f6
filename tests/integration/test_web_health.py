"""Health, control and status endpoints over PostgreSQL with spawned Redis servers."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis
from flask.testing import FlaskClient
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from monitor.collect import ClientCache
from monitor.db import transaction
from monitor.jobs import health_target
from monitor.runtime import Runtime
from monitor.targets import ensure_default_target
from tests.support.servers import RedisServer
from web import create_app

API = "/monitoring/redis"


@pytest.fixture(scope="module")
def app_client(pg_runtime: Runtime, redis_server: RedisServer) -> Iterator[FlaskClient]:
    with transaction(pg_runtime.sessions) as session:
        ensure_default_target(session, redis_server.url, datetime.now(UTC))
    yield create_app({"RUNTIME": pg_runtime}).test_client()


@pytest.fixture(scope="module")
def stored(pg_runtime: Runtime, app_client: FlaskClient) -> int:
    """Run and store one health check of the default target, as the beat would."""
    cache = ClientCache(2, 2, 10)
    report = health_target(pg_runtime.sessions, cache, 1, 1, pg_runtime.clock,
                           pg_runtime.settings)
    cache.close()
    assert report is not None
    return report.target_id


def test_health_reads_the_latest_stored_report(app_client: FlaskClient, stored: int) -> None:
    response = app_client.get(f"{API}/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "healthy"
    (target,) = body["targets"]
    assert target["target_id"] == stored
    assert set(target["checks"]) == {"connectivity", "memory_usage", "connection_pool",
                                     "performance", "persistence", "replication"}
    assert target["circuit"]["state"] == "closed"
    assert target["checked_at"] is not None


def test_one_check_type(app_client: FlaskClient, stored: int) -> None:
    body = app_client.get(f"{API}/health/memory_usage").get_json()
    assert list(body["targets"][0]["checks"]) == ["memory_usage"]


def test_unknown_check_type_lists_the_valid_ones(app_client: FlaskClient) -> None:
    response = app_client.get(f"{API}/health/disk")
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "unknown_check_type"
    assert "memory_usage" in body["details"]["valid_types"] and "memory_usage" in body["message"]


def test_fresh_runs_the_checks_now(app_client: FlaskClient, stored: int) -> None:
    before = app_client.get(f"{API}/health").get_json()["targets"][0]["checked_at"]
    fresh = app_client.get(f"{API}/health?fresh=true").get_json()["targets"][0]
    assert fresh["checked_at"] > before
    assert app_client.get(f"{API}/health?fresh=maybe").status_code == 400


def test_unhealthy_is_503_for_load_balancers(
        app_client: FlaskClient, pg_runtime: Runtime,
        redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    created = app_client.post(f"{API}/targets", json={"name": "doomed", "url": server.url,
                                                     "project": "lb"}).get_json()
    server.stop()
    response = app_client.get(f"{API}/health?fresh=true&target=doomed")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unhealthy"
    assert app_client.get(f"{API}/health?target=default").status_code == 200
    app_client.delete(f"{API}/targets/{created['id']}")


def test_never_checked_target_is_unknown_and_503(app_client: FlaskClient) -> None:
    created = app_client.post(f"{API}/targets", json={"name": "new", "url": "redis://h:1",
                                                     "project": "lb"}).get_json()
    response = app_client.get(f"{API}/health?target=new")
    assert response.status_code == 503 and response.get_json()["status"] == "unknown"
    app_client.delete(f"{API}/targets/{created['id']}")


def test_stop_and_start_are_recorded_with_who_and_when(app_client: FlaskClient) -> None:
    stopped = app_client.post(f"{API}/monitoring/stop", json={"user": "alice",
                                                            "reason": "maintenance"})
    assert stopped.status_code == 200
    assert stopped.get_json()["monitoring"] == "stopped"
    status = app_client.get(f"{API}/monitoring/status").get_json()
    assert status["control"]["changed_by"] == "alice"
    assert status["control"]["reason"] == "maintenance"
    assert status["control"]["changed_at"]
    started = app_client.post(f"{API}/monitoring/start").get_json()
    assert started["monitoring"] == "running" and started["changed_by"].startswith("anonymous@")


def test_control_rejects_a_bad_body(app_client: FlaskClient) -> None:
    response = app_client.post(f"{API}/monitoring/stop", json={"who": "bob"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_body"
    assert app_client.get(f"{API}/monitoring/status").get_json()["control"]["enabled"] is True


def test_status_has_breakers_and_queue_backlog(pg_runtime: Runtime, stored: int) -> None:
    broker = "redis://127.0.0.1:6379/13"
    redis.Redis.from_url(broker).flushdb()
    with Connection(broker) as conn:
        conn.SimpleQueue("collect").put({"waiting": True})
    rt = replace(pg_runtime, settings=replace(pg_runtime.settings, celery_broker_url=broker))
    body = create_app({"RUNTIME": rt}).test_client().get(f"{API}/monitoring/status").get_json()
    assert any(b["target"] == "default" and b["state"] == "closed"
               for b in body["circuit_breakers"])
    assert body["queue_backlog"]["collect"] == 1
    assert body["queue_backlog"]["health"] == 0
    redis.Redis.from_url(broker).flushdb()


def test_prometheus_text_has_health_and_breaker_series(app_client: FlaskClient,
                                                       stored: int) -> None:
    text = app_client.get(f"{API}/metrics/prometheus").get_data(as_text=True)
    samples = {(s.name, s.labels.get("check"), s.labels.get("status"), s.labels.get("state")):
               s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.labels.get("target") == "default"}
    assert samples[("jeex_redis_health_status", "overall", "healthy", None)] == 1
    assert samples[("jeex_redis_health_status", "memory_usage", "unhealthy", None)] == 0
    assert samples[("jeex_redis_circuit_breaker_state", None, None, "closed")] == 1
