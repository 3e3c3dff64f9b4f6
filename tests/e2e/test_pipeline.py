"""Real beat, workers and web against PostgreSQL, a Redis broker and a spawned Redis."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from monitor.db import HealthResult, Sample, make_engine, make_sessionmaker
from tests.support.processes import Processes, monitor_env, scrape
from tests.support.servers import RedisServer, create_database, drop_database, free_port, wait_until

pytestmark = pytest.mark.e2e
INTERVAL = 1.0
BROKER = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Two beats, two workers and one web process, as production runs them (Procfile)."""
    monitored = RedisServer().start()
    database = create_database()
    redis.Redis.from_url(BROKER).flushdb()
    logs = tmp_path_factory.mktemp("pipeline")
    env = monitor_env(DATABASE_URL=database, CELERY_BROKER_URL=BROKER, REDIS_URL=monitored.url,
                      METRICS_COLLECTION_INTERVAL=str(INTERVAL),
                      REDIS_HEALTH_CHECK_INTERVAL=str(INTERVAL))
    procs = Processes(logs, env)
    migrate = procs.start("migrate", str(Path(env["PYTHONPATH"]) / ".venv/bin/redismon"),
                          "migrate")
    assert migrate.wait(60) == 0, procs.log("migrate")
    port = free_port()
    for name in ("worker1", "worker2"):
        procs.worker(name)
    for name in ("beat1", "beat2"):
        procs.beat(name)
    procs.web(port)
    yield {"url": f"http://127.0.0.1:{port}/monitoring/redis", "database": database,
           "redis": monitored, "procs": procs}
    procs.stop_all()
    monitored.cleanup()
    drop_database(database)


def _rows(database: str, model: Any, order: Any) -> list[Any]:
    """Read every row of a table from the stack's database, in order."""
    engine = make_engine(database)
    try:
        with make_sessionmaker(engine)() as session:
            return list(session.scalars(select(model).order_by(order)))
    finally:
        engine.dispose()


def _health(database: str) -> list[HealthResult]:
    return _rows(database, HealthResult, HealthResult.checked_at)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.load(response))


def _samples(database: str) -> list[Sample]:
    return _rows(database, Sample, Sample.collected_at)


def _up(stack: dict) -> float | None:
    values = scrape(stack["url"] + "/metrics/prometheus")
    return None if values is None else values.get(("jeex_redis_up", "default"))


def test_samples_reach_postgresql_and_the_prometheus_text(stack: dict) -> None:
    wait_until(lambda: _up(stack) == 1, 60, 0.5, "jeex_redis_up 1")
    assert _samples(stack["database"]), "no sample in PostgreSQL"
    # Connect first: a new client connection itself moves used_memory by ~10 % on an empty server.
    observer = stack["redis"].client()
    observer.ping()
    first = _samples(stack["database"])[-1].collected_at
    wait_until(lambda: _samples(stack["database"])[-1].collected_at > first, 30, 0.2,
               "a new sample")
    used = int(observer.info("memory")["used_memory"])
    values = scrape(stack["url"] + "/metrics/prometheus")
    assert values is not None
    assert abs(values[("jeex_redis_memory_bytes", "default")] - used) / used < 0.05
    assert values[("jeex_redis_last_sample_age_seconds", "default")] < 10


def test_two_beats_and_two_workers_write_no_duplicate(stack: dict) -> None:
    wait_until(lambda: len(_samples(stack["database"])) >= 8, 60, 0.5, "8 samples")
    times = [s.collected_at for s in _samples(stack["database"])]
    slots = [s.slot for s in _samples(stack["database"])]
    assert len(slots) == len(set(slots))
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    # Each beat dispatches every interval; a target is claimed for half of one.
    assert min(gaps) >= timedelta(seconds=INTERVAL / 2), gaps
    log = stack["procs"].log("worker1") + stack["procs"].log("worker2")
    assert "status=claimed" in log or "status=duplicate" in log, \
        "the second beat's tasks were never turned away; is it running?"


def test_stopped_redis_reads_up_zero_then_one_after_restart(stack: dict) -> None:
    wait_until(lambda: _up(stack) == 1, 60, 0.5, "jeex_redis_up 1")
    stack["redis"].stop()
    wait_until(lambda: _up(stack) == 0, 30, 0.5, "jeex_redis_up 0 after stop")
    down = [s for s in _samples(stack["database"]) if not s.up]
    assert down and down[-1].error == "ConnectionError"
    stack["redis"].start()
    wait_until(lambda: _up(stack) == 1, 30, 0.5, "jeex_redis_up 1 after restart")


def test_status_sees_beat_and_workers(stack: dict) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(stack["url"] + "/monitoring/status", timeout=5) as response:
        body = json.load(response)
    assert body["processes"]["beat"]["alive"] is True
    wait_until(lambda: json.load(urllib.request.urlopen(
        stack["url"] + "/monitoring/status", timeout=5))["processes"]["worker"]["alive"],
        30, 1, "a worker heartbeat")
    assert any(t["task"] == "collect.dispatch" and t["runs"] > 0 for t in body["tasks"])


def test_stop_pauses_samples_and_health_and_start_resumes(stack: dict) -> None:
    database = stack["database"]
    wait_until(lambda: _health(database), 30, 0.5, "a stored health result")
    stopped = _post(stack["url"] + "/monitoring/stop", {"user": "e2e", "reason": "test"})
    assert stopped["monitoring"] == "stopped" and stopped["changed_by"] == "e2e"
    stopped_at = datetime.fromisoformat(stopped["changed_at"])
    time.sleep(4 * INTERVAL)
    samples, health = _samples(database), _health(database)
    # Tasks already running may finish; nothing starts later than one interval after stop.
    slack = timedelta(seconds=INTERVAL + 0.5)
    assert samples[-1].collected_at <= stopped_at + slack
    assert health[-1].checked_at <= stopped_at + slack
    time.sleep(3 * INTERVAL)
    assert len(_samples(database)) == len(samples) and len(_health(database)) == len(health)
    started = _post(stack["url"] + "/monitoring/start", {"user": "e2e"})
    assert started["monitoring"] == "running"
    wait_until(lambda: len(_samples(database)) > len(samples), 15, 0.5, "samples after start")
    wait_until(lambda: len(_health(database)) > len(health), 15, 0.5, "health after start")


def test_a_real_prometheus_scrapes_the_web_process(stack: dict, tmp_path: Path) -> None:
    """Prometheus itself (Debian package) scrapes our text and answers a query about it."""
    from urllib.parse import quote, urlsplit

    from tests.support.servers import die_with_parent

    web = urlsplit(stack["url"])
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: redismon\n"
        f"    metrics_path: {web.path}/metrics/prometheus\n"
        f"    static_configs: [{{targets: ['{web.netloc}']}}]\n")
    port = free_port()
    with open(tmp_path / "prometheus.log", "wb") as log:
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    api = f"http://127.0.0.1:{port}/api/v1"

    def query(expr: str) -> list[dict]:
        try:
            with urllib.request.urlopen(f"{api}/query?query={quote(expr)}", timeout=5) as r:
                return list(json.load(r)["data"]["result"])
        except OSError:
            return []

    try:
        wait_until(lambda: query('up{job="redismon"} == 1'), 60, 0.5, "Prometheus scraping us")
        series = wait_until(lambda: query('jeex_redis_up{target="default"}'), 30, 0.5,
                            "jeex_redis_up in Prometheus")
        assert series[0]["metric"]["project"] == "default"
        rate = wait_until(lambda: query("rate(jeex_redis_commands_processed_total[5s])"), 30,
                          0.5, "a rate over our counter")
        assert float(rate[0]["value"][1]) >= 0
        with urllib.request.urlopen(f"{api}/targets", timeout=5) as r:
            (target,) = json.load(r)["data"]["activeTargets"]
        assert target["health"] == "up" and not target["lastError"]
    finally:
        prometheus.terminate()
        prometheus.wait(20)
