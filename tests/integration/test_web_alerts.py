"""The alerts REST API over PostgreSQL: actions, filters, summary, rules, silences, channels."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from monitor.db import Alert, transaction
from monitor.runtime import Runtime, bootstrap
from monitor.targets import add_target
from web import create_app

API = "/monitoring/redis/alerts"
NOW = datetime.now(UTC)


def _alert(rule_id: int, target_id: int, status: str, severity: str, minutes_ago: int,
           rule: str) -> Alert:
    started = NOW - timedelta(minutes=minutes_ago)
    labels = {"alertname": rule, "rule": rule, "severity": severity, "project": "api",
              "target": "cache"}
    return Alert(rule_id=rule_id, target_id=target_id, status=status, severity=severity,
                 value=95.0, summary=f"{rule} fired", labels=labels, fingerprint="f" * 16,
                 started_at=started, activated_at=started if status != "pending" else None,
                 resolved_at=NOW if status == "resolved" else None,
                 last_evaluated_at=NOW, evaluation="firing")


@pytest.fixture(scope="module")
def client(pg_runtime: Runtime) -> Iterator[FlaskClient]:
    bootstrap(pg_runtime)
    app = create_app({"RUNTIME": pg_runtime})
    web = app.test_client()
    rules = {r["name"]: r["id"] for r in web.get(f"{API}/rules").get_json()["rules"]}
    with transaction(pg_runtime.sessions) as session:
        target = add_target(session, project="api", name="cache", url="redis://h:1", now=NOW)
        session.add_all([
            _alert(rules["redis_memory_critical"], target.id, "active", "critical", 30,
                   "redis_memory_critical"),
            _alert(rules["redis_hit_rate_warning"], target.id, "pending", "warning", 20,
                   "redis_hit_rate_warning"),
            _alert(rules["redis_down"], target.id, "resolved", "critical", 90, "redis_down"),
        ])
    yield web


def _ids(client: FlaskClient, query: str = "") -> list[int]:
    return [a["id"] for a in client.get(f"{API}{query}").get_json()["alerts"]]


def test_list_filters_and_pages(client: FlaskClient) -> None:
    everything = _ids(client)
    assert len(everything) == 3 and everything == sorted(everything, reverse=True)
    assert len(_ids(client, "?status=active")) == 1
    assert len(_ids(client, "?severity=critical")) == 2
    assert len(_ids(client, "?rule=redis_down")) == 1
    since = (NOW - timedelta(minutes=25)).isoformat().replace("+00:00", "Z")
    assert len(_ids(client, f"?since={since}")) == 1
    page = client.get(f"{API}?limit=2").get_json()
    rest = client.get(f"{API}?limit=2&cursor={page['next_cursor']}").get_json()
    assert [a["id"] for a in page["alerts"] + rest["alerts"]] == everything
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("query", ["?status=open", "?severity=huge", "?since=yesterday",
                                   "?limit=0", "?limit=abc", "?since=2026-01-01T00:00:00"])
def test_bad_filters_are_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"{API}{query}")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_parameter"


def _active_id(client: FlaskClient) -> int:
    return _ids(client, "?status=active")[0]


def test_acknowledge_then_conflict_on_resolved(client: FlaskClient) -> None:
    alert_id = _active_id(client)
    response = client.post(f"{API}/{alert_id}/action", json={
        "action": "acknowledge", "user": "alice", "comment": "on it", "duration": "10m"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == "alice"
    assert body["events"][-1] == {**body["events"][-1], "kind": "acknowledged", "actor": "alice",
                                  "comment": "on it"}
    resolved = client.post(f"{API}/{alert_id}/action", json={"action": "resolve", "user": "bob"})
    assert resolved.get_json()["status"] == "resolved"
    again = client.post(f"{API}/{alert_id}/action", json={"action": "acknowledge", "user": "c"})
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"


@pytest.mark.parametrize(("body", "status"), [
    ({"action": "dance", "user": "a"}, 400),
    ({"action": "acknowledge"}, 400),
    ({"action": "acknowledge", "user": "a", "duration": "-5m"}, 400),
    ({"action": "silence", "user": "a"}, 400),
    ({"action": "acknowledge", "user": "a", "colour": "red"}, 400),
])
def test_bad_action_bodies_are_400(client: FlaskClient, body: dict, status: int) -> None:
    alert_id = _ids(client, "?status=pending")[0]
    response = client.post(f"{API}/{alert_id}/action", json=body)
    assert response.status_code == status and response.is_json


def test_unknown_alert_is_404(client: FlaskClient) -> None:
    response = client.post(f"{API}/999999/action", json={"action": "resolve", "user": "a"})
    assert response.status_code == 404
    assert client.get(f"{API}/999999").status_code == 404


def test_summary_counts_and_mean_times(client: FlaskClient) -> None:
    body = client.get(f"{API}/summary").get_json()
    assert body["open"] == sum(body["by_status"].values())
    assert set(body["by_status"]) <= {"pending", "active", "acknowledged"}
    assert "last_24h" in body and "mean_time_to_resolve_seconds" in body["last_24h"]


@pytest.mark.parametrize(("rule", "fragment"), [
    ({"name": "x1", "metric": "nope", "operator": ">", "threshold": 1}, "unknown metric"),
    ({"name": "x2", "metric": "memory_percentage", "operator": "=>", "threshold": 1},
     "operator"),
    ({"name": "x3", "metric": "memory_percentage", "operator": ">", "threshold": 1,
      "for_seconds": -5}, "for_seconds"),
    ({"name": "x4", "metric": "memory_percentage", "operator": ">", "threshold": 90,
      "clear_threshold": 95}, "clear_threshold"),
    ({"name": "x5", "metric": "memory_percentage", "operator": ">", "threshold": 90,
      "summary": "{password}"}, "unknown field"),
])
def test_rule_validation_is_400_with_a_clear_message(client: FlaskClient, rule: dict,
                                                     fragment: str) -> None:
    response = client.post(f"{API}/rules", json=rule)
    assert response.status_code == 400
    assert fragment in response.get_json()["message"] + str(response.get_json()["details"])


def test_rule_crud(client: FlaskClient) -> None:
    created = client.post(f"{API}/rules", json={
        "name": "big_memory", "metric": "memory_used_bytes", "operator": ">",
        "threshold": 1e9, "for_seconds": 60, "severity": "warning"})
    assert created.status_code == 201
    rule_id = created.get_json()["id"]
    assert client.post(f"{API}/rules", json={"name": "big_memory", "metric": "up",
                                             "operator": "<", "threshold": 1}).status_code == 409
    patched = client.patch(f"{API}/rules/{rule_id}", json={"threshold": 2e9})
    assert patched.get_json()["threshold"] == 2e9
    assert client.delete(f"{API}/rules/{rule_id}").status_code == 204
    assert client.get(f"{API}/rules/{rule_id}").status_code == 404


def test_builtin_rules_can_be_disabled_not_deleted(client: FlaskClient) -> None:
    rules = client.get(f"{API}/rules").get_json()["rules"]
    builtin = next(r for r in rules if r["name"] == "redis_evictions")
    assert client.delete(f"{API}/rules/{builtin['id']}").status_code == 409
    changed = client.patch(f"{API}/rules/{builtin['id']}", json={"enabled": False}).get_json()
    assert changed["enabled"] is False and changed["customized"] is True


def test_silences_expire_and_stay(client: FlaskClient) -> None:
    created = client.post(f"{API}/silences", json={
        "matchers": {"target": "cache", "severity": "critical"}, "created_by": "alice",
        "comment": "deploy", "duration": "1h"})
    assert created.status_code == 201 and created.get_json()["state"] == "active"
    silence_id = created.get_json()["id"]
    expired = client.delete(f"{API}/silences/{silence_id}?user=bob").get_json()
    assert expired["state"] == "expired" and expired["expired_by"] == "bob"
    listed = client.get(f"{API}/silences").get_json()["silences"]
    assert any(s["id"] == silence_id and s["state"] == "expired" for s in listed)


@pytest.mark.parametrize("body", [
    {"matchers": {}, "created_by": "a", "comment": "c", "duration": "1h"},
    {"matchers": {"colour": "red"}, "created_by": "a", "comment": "c", "duration": "1h"},
    {"matchers": {"target": "x"}, "created_by": "a", "comment": "c"},
    {"matchers": {"target": "x"}, "created_by": "a", "comment": "c", "duration": "soon"},
])
def test_bad_silences_are_400(client: FlaskClient, body: dict) -> None:
    assert client.post(f"{API}/silences", json=body).status_code == 400


def test_channels_hide_their_secrets(client: FlaskClient) -> None:
    created = client.post(f"{API}/channels", json={
        "name": "hook", "kind": "webhook",
        "config": {"url": "https://user:s3cret@hooks.example/T0KEN123"}, "repeat_interval": "1h"})
    assert created.status_code == 201, created.get_json()
    assert "s3cret" not in created.get_data(as_text=True)
    assert "s3cret" not in client.get(f"{API}/channels").get_data(as_text=True)
    bad = client.post(f"{API}/channels", json={"name": "b", "kind": "pigeon", "config": {}})
    assert bad.status_code == 400 and "webhook" in bad.get_json()["message"]


def test_watchable_metrics_are_listed(client: FlaskClient) -> None:
    names = {m["name"] for m in client.get(f"{API}/metrics").get_json()["metrics"]}
    assert {"memory_percentage", "hit_rate", "up", "health.persistence"} <= names
