"""Alerting end to end: two beats, two workers, web, a webhook receiver and a real Alertmanager."""
from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.support.alertmanager import Alertmanager, running_alertmanager
from tests.support.processes import BIN, Processes, monitor_env
from tests.support.receivers import HTTPReceiver
from tests.support.servers import RedisServer, create_database, drop_database, free_port, wait_until

pytestmark = pytest.mark.e2e
BROKER = "redis://127.0.0.1:6379/12"
EVALUATION = 1.0
REPEAT = 5.0


def _call(method: str, url: str, body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    monitored = RedisServer().start()
    database = create_database()
    redis.Redis.from_url(BROKER).flushdb()
    logs = tmp_path_factory.mktemp("alerting")
    port = free_port()
    env = monitor_env(DATABASE_URL=database, CELERY_BROKER_URL=BROKER,
                      REDIS_URL="redis://127.0.0.1:1/0", METRICS_COLLECTION_INTERVAL="1",
                      ALERT_EVALUATION_INTERVAL=str(EVALUATION), REDIS_HEALTH_CHECK_INTERVAL="2",
                      REDIS_RETRY_DELAY="0.5", WEB_PORT=str(port))
    procs = Processes(logs, env)
    assert procs.start("migrate", str(BIN / "redismon"), "migrate").wait(60) == 0
    api = f"http://127.0.0.1:{port}/monitoring/redis"
    with HTTPReceiver() as webhook, running_alertmanager() as am:
        procs.web(port)
        wait_until(lambda: _ready(api), 30, 0.2, "the web process")
        _configure(api, monitored, webhook, am)
        for name in ("worker1", "worker2"):
            procs.worker(name)
        for name in ("beat1", "beat2"):
            procs.beat(name)
        yield {"api": api, "redis": monitored, "webhook": webhook, "am": am, "procs": procs,
               "database": database}
        procs.stop_all()
    monitored.cleanup()
    drop_database(database)


def _ready(api: str) -> bool:
    try:
        return bool(_call("GET", api + "/monitoring/status"))
    except OSError:
        return False


def _configure(api: str, monitored: RedisServer, webhook: HTTPReceiver,
               am: Alertmanager) -> None:
    """One target in its own project, short `for`s, a webhook and an Alertmanager channel."""
    default = _call("GET", api + "/targets")["targets"][0]
    _call("PATCH", f"{api}/targets/{default['id']}", {"enabled": False})  # nothing listens on :1
    target = _call("POST", api + "/targets", {"name": "cache", "url": monitored.url,
                                              "project": "e2e"})
    rules = {r["name"]: r["id"] for r in _call("GET", api + "/alerts/rules")["rules"]}
    _call("PATCH", f"{api}/alerts/rules/{rules['redis_memory_critical']}", {"for_seconds": 2})
    _call("PATCH", f"{api}/alerts/rules/{rules['redis_down']}", {"for_seconds": 2})
    _call("POST", api + "/alerts/channels", {
        "name": "hook", "kind": "webhook", "config": {"url": webhook.url + "/hook"},
        "project_id": target["project_id"], "repeat_interval": REPEAT})
    _call("POST", api + "/alerts/channels", {
        "name": "am", "kind": "alertmanager", "config": {"url": am.url},
        "project_id": target["project_id"]})


def _payloads(webhook: HTTPReceiver, alertname: str, status: str) -> list[dict]:
    return [alert for body in webhook.bodies() if isinstance(body, dict)
            for alert in body.get("alerts", [])
            if alert["labels"].get("alertname") == alertname and alert["status"] == status]


def _open_alert(api: str, rule: str) -> dict | None:
    alerts = _call("GET", f"{api}/alerts?rule={rule}")["alerts"]
    return next((a for a in alerts if a["status"] != "resolved"), None)


def _activation_delay(database: str, alert: dict) -> float:
    from datetime import datetime

    from sqlalchemy import select

    from monitor.db import Sample, make_engine, make_sessionmaker
    from monitor.measures import memory_percentage

    engine = make_engine(database)
    with make_sessionmaker(engine)() as session:
        samples = list(session.scalars(select(Sample).where(
            Sample.target_id == alert["target_id"], Sample.up.is_(True))
            .order_by(Sample.collected_at)))
    engine.dispose()
    over = [s for s in samples if (m := memory_percentage(s.data["f"])) and m.percent > 90]
    activated = datetime.fromisoformat(alert["activated_at"])
    return (activated - over[0].collected_at).total_seconds()


def _sent(database: str, alert_id: int | None, kind: str | None,
          channel: str = "hook") -> int:
    """Count notifications the database says were sent through a channel."""
    from sqlalchemy import func, select

    from monitor.db import Notification, NotificationChannel, make_engine, make_sessionmaker

    query = (select(func.count()).select_from(Notification)
             .join(NotificationChannel, NotificationChannel.id == Notification.channel_id)
             .where(NotificationChannel.name == channel, Notification.status == "sent"))
    if alert_id is not None:
        query = query.where(Notification.alert_id == alert_id)
    if kind is not None:
        query = query.where(Notification.kind == kind)
    engine = make_engine(database)
    with make_sessionmaker(engine)() as session:
        count = int(session.scalar(query) or 0)
    engine.dispose()
    return count


def test_memory_alert_fires_once_ack_stops_repeats_and_resolves_once(stack: dict) -> None:
    api, server, webhook = stack["api"], stack["redis"], stack["webhook"]
    client = server.client()
    client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) * 2))
    server.fill_memory(93)
    alert = wait_until(lambda: (a := _open_alert(api, "redis_memory_critical")) and
                       a["status"] == "active" and a, 30, 0.2, "an active memory alert")
    assert alert["severity"] == "critical"
    # From the first stored sample over 90 % to activation: `for` (2 s) plus at most two
    # evaluation intervals; a second of slack for the worker picking the task up.
    reaction = _activation_delay(stack["database"], alert)
    print(f"memory alert active {reaction:.2f} s after the first sample over 90 %")
    assert reaction <= 2 + 2 * EVALUATION + 1
    wait_until(lambda: _payloads(webhook, "redis_memory_critical", "firing"), 15, 0.2,
               "the firing webhook")
    acked = _call("POST", f"{api}/alerts/{alert['id']}/action",
                  {"action": "acknowledge", "user": "oncall", "comment": "e2e"})
    assert acked["status"] == "acknowledged"
    time.sleep(3 * REPEAT)
    assert len(_payloads(webhook, "redis_memory_critical", "firing")) == 1
    client.flushall()
    wait_until(lambda: _payloads(webhook, "redis_memory_critical", "resolved"), 30, 0.2,
               "the resolved webhook")
    time.sleep(3 * EVALUATION)
    assert len(_payloads(webhook, "redis_memory_critical", "firing")) == 1
    assert len(_payloads(webhook, "redis_memory_critical", "resolved")) == 1
    body = next(b for b in webhook.bodies() if b["status"] == "resolved")
    assert body["version"] == "4" and body["receiver"] == "hook"


def test_a_stopped_target_reaches_alertmanager_and_resolves_there(stack: dict) -> None:
    api, server, am = stack["api"], stack["redis"], stack["am"]
    server.stop()
    down = wait_until(lambda: (a := _open_alert(api, "redis_down")) and a["status"] == "active"
                      and a, 30, 0.2, "an active redis_down alert")
    labels = down["labels"]
    wait_until(lambda: am.alert_state(labels) == "active", 30, 0.5,
               "redis_down active in Alertmanager")
    server.start()
    wait_until(lambda: _open_alert(api, "redis_down") is None, 60, 0.5, "redis_down resolved")
    wait_until(lambda: am.alert_state(labels) == "resolved", 60, 0.5,
               "redis_down resolved in Alertmanager")
    webhook = stack["webhook"]
    wait_until(lambda: _payloads(webhook, "redis_down", "resolved"), 30, 0.2, "resolved hook")
    # Unacknowledged, it may have repeated every REPEAT seconds while down; each payload is
    # one stored notification, sent once.
    firing = _payloads(webhook, "redis_down", "firing")
    assert len(firing) == _sent(stack["database"], down["id"], "firing") >= 1
    assert len(_payloads(webhook, "redis_down", "resolved")) == 1


def test_two_beats_and_two_workers_sent_no_duplicate(stack: dict) -> None:
    received = [a for body in stack["webhook"].bodies() for a in body["alerts"]]
    assert received, "the webhook received nothing"
    # Every notification row is unique per (alert, channel, kind, sequence) and claimed before
    # it is sent: as many payloads as rows sent means none went out twice.
    assert len(received) == _sent(stack["database"], None, None, channel="hook")
    logs = "".join(stack["procs"].log(n) for n in ("worker1", "worker2"))
    assert "status=claimed" in logs or "status=duplicate" in logs


def test_prometheus_text_counts_memory_alerts(stack: dict) -> None:
    text = urllib.request.urlopen(stack["api"] + "/metrics/prometheus", timeout=10).read()
    line = next(x for x in text.decode().splitlines()
                if x.startswith('jeex_redis_memory_alerts_total{project="e2e"'))
    assert float(line.rsplit(" ", 1)[1]) >= 1
