"""The Flask app over a PostgreSQL history: JSON summary, Prometheus text, targets, errors."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from monitor.collect import ClientCache
from monitor.db import transaction
from monitor.jobs import beat_heartbeat, collect_target, recorded_run
from monitor.runtime import Runtime
from monitor.targets import ensure_default_target
from tests.support.servers import RedisServer
from web import create_app

API = "/monitoring/redis"


@pytest.fixture(scope="module")
def client(pg_runtime: Runtime, redis_server: RedisServer) -> Iterator[FlaskClient]:
    """An app whose default target is the spawned Redis, with two samples stored."""
    with transaction(pg_runtime.sessions) as session:
        target_id = ensure_default_target(session, redis_server.url, datetime.now(UTC)).id
    cache = ClientCache(2, 2, 10)
    redis_server.client().set("warm", "1")
    for slot in (1, 2):
        redis_server.client().get("warm")
        redis_server.client().get("cold")
        collect_target(pg_runtime.sessions, cache, target_id, slot, pg_runtime.clock, 1e-6)
    cache.close()
    app = create_app({"RUNTIME": pg_runtime})
    yield app.test_client()


def test_prometheus_text_has_up_and_memory_and_passes_promtool(
        client: FlaskClient, redis_server: RedisServer) -> None:
    response = client.get(f"{API}/metrics/prometheus")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    values = {(s.name, s.labels.get("target")): s.value
              for f in text_string_to_metric_families(text) for s in f.samples}
    assert values[("jeex_redis_up", "default")] == 1
    used = int(redis_server.client().info("memory")["used_memory"])
    assert abs(values[("jeex_redis_memory_bytes", "default")] - used) / used < 0.05
    assert values[("jeex_redis_hit_rate", "default")] == pytest.approx(0.5)


def test_metrics_summary_per_target(client: FlaskClient) -> None:
    body = client.get(f"{API}/metrics").get_json()
    (target,) = [t for t in body["targets"] if t["target"] == "default"]
    assert target["up"] is True and target["project"] == "default"
    assert target["memory_basis"] == "system_memory"
    assert 0 < target["memory_percentage"] < 100
    assert target["hit_rate"] == pytest.approx(0.5)
    assert target["rates"]["commands_per_second"] > 0
    assert target["latest"]["used_memory"] > 0


def test_summary_filters_by_target(client: FlaskClient) -> None:
    assert client.get(f"{API}/metrics?target=nope").get_json()["targets"] == []
    assert client.get(f"{API}/metrics?project_id=abc").status_code == 400


def test_target_crud_never_shows_the_password(client: FlaskClient) -> None:
    created = client.post(f"{API}/targets", json={
        "name": "sessions", "url": "redis://app:hunter2@10.0.0.5:6380/1", "project": "shop"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["url"] == "redis://app:***@10.0.0.5:6380/1"
    target_id = body["id"]
    listing = client.get(f"{API}/targets").get_data(as_text=True)
    assert "hunter2" not in listing and "sessions" in listing
    changed = client.patch(f"{API}/targets/{target_id}", json={"enabled": False})
    assert changed.status_code == 200 and changed.get_json()["enabled"] is False
    assert client.get(f"{API}/targets/{target_id}").get_json()["name"] == "sessions"
    assert client.delete(f"{API}/targets/{target_id}").status_code == 204
    assert client.get(f"{API}/targets/{target_id}").status_code == 404


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"name": "x"}, 400, "invalid_body"),
    ({"name": "x", "url": "http://nope"}, 400, "invalid"),
    ({"name": "bad name!", "url": "redis://h:6379"}, 400, "invalid"),
    ({"name": "x", "url": "redis://h:6379", "colour": "red"}, 400, "invalid_body"),
    ({"name": "x", "url": "redis://h:6379", "enabled": "yes"}, 400, "invalid"),
    ({"name": "default", "url": "redis://h:6379"}, 409, "conflict"),
])
def test_bad_target_requests_get_json_errors(client: FlaskClient, body: dict, status: int,
                                             error: str) -> None:
    response = client.post(f"{API}/targets", json=body)
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert response.get_json()["message"]


def test_non_json_body_is_a_400(client: FlaskClient) -> None:
    response = client.post(f"{API}/targets", data="name=x", content_type="text/plain")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_body"


def test_unknown_routes_and_methods_are_json(client: FlaskClient) -> None:
    missing = client.get(f"{API}/nothing-here")
    assert missing.status_code == 404 and missing.is_json
    wrong = client.put(f"{API}/metrics")
    assert wrong.status_code == 405 and wrong.get_json()["error"] == "method_not_allowed"


def test_status_reports_heartbeats_and_task_runs(client: FlaskClient,
                                                  pg_runtime: Runtime) -> None:
    beat_heartbeat(pg_runtime.sessions, "beat", pg_runtime.clock())
    with recorded_run(pg_runtime.sessions, "collect.dispatch", pg_runtime.clock):
        pass
    body = client.get(f"{API}/monitoring/status").get_json()
    assert body["processes"]["beat"]["alive"] is True
    assert body["processes"]["worker"]["alive"] is False
    (run,) = [t for t in body["tasks"] if t["task"] == "collect.dispatch"]
    assert run["runs"] >= 1 and run["last_error"] is None and run["last_duration_seconds"] >= 0
