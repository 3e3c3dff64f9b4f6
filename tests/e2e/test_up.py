"""`redismon up` as a new user runs it: embedded SQLite history and broker, Ctrl-C stops all."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import alive, descendants, fetch_text, monitor_env, scrape
from tests.support.servers import RedisServer, free_port, wait_until

pytestmark = pytest.mark.e2e
REDISMON = str(Path(sys.executable).parent / "redismon")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Start `redismon up` in an empty folder against a spawned Redis."""
    monitored = RedisServer().start()
    folder = tmp_path_factory.mktemp("up")
    port = free_port()
    env = monitor_env(REDIS_URL=monitored.url, WEB_PORT=str(port),
                      METRICS_COLLECTION_INTERVAL="2")
    log = open(folder / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([REDISMON, "up"], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    state = {"proc": proc, "redis": monitored, "folder": folder,
             "url": f"http://127.0.0.1:{port}/monitoring/redis"}
    yield state
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    monitored.cleanup()


def _log(up: dict) -> str:
    return (up["folder"] / "up.log").read_text(errors="replace")


def test_prometheus_shows_up_and_memory_within_30_seconds(up: dict) -> None:
    key = ("jeex_redis_up", "default")
    wait_until(lambda: (v := scrape(up["url"] + "/metrics/prometheus")) and v.get(key) == 1,
               30, 0.5, "jeex_redis_up 1 within 30 s")
    # Our own connection moves used_memory of an empty server by ~10 %: compare against a
    # sample taken after it connected.
    observer = up["redis"].client()
    observer.ping()
    connected = time.monotonic()
    age = ("jeex_redis_last_sample_age_seconds", "default")
    values = wait_until(lambda: (v := scrape(up["url"] + "/metrics/prometheus")) and
                        v[age] < time.monotonic() - connected and v, 30, 0.2, "a newer sample")
    used = int(observer.info("memory")["used_memory"])
    assert abs(values[("jeex_redis_memory_bytes", "default")] - used) / used < 0.05
    assert f"{up['url']}/metrics" in _log(up), "up must print where the API listens"


def test_the_text_passes_promtool(up: dict) -> None:
    text = fetch_text(up["url"] + "/metrics/prometheus")
    check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_history_and_broker_are_files_in_the_folder(up: dict) -> None:
    names = {p.name for p in up["folder"].iterdir()}
    assert "redismon.db" in names and "redismon-broker.db" in names


def test_ctrl_c_stops_every_process_it_started(up: dict) -> None:
    proc = up["proc"]
    children = descendants(proc.pid)
    assert len(children) >= 3, f"expected web, worker and beat, found {children}"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, _log(up)
    wait_until(lambda: not any(alive(pid) for pid in children), 30, 0.2,
               "every child process to exit")
    assert "Redis Monitor stopped." in _log(up)


def test_children_die_with_a_killed_up(tmp_path: Path) -> None:
    server = RedisServer().start()
    try:
        env = monitor_env(REDIS_URL=server.url, WEB_PORT=str(free_port()))
        with open(tmp_path / "up.log", "wb") as log:
            proc = subprocess.Popen([REDISMON, "up"], cwd=tmp_path, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            children = wait_until(lambda: len(found := descendants(proc.pid)) >= 3 and found,
                                  60, 0.2, "web, worker and beat")
            proc.kill()  # no chance to clean up: the kernel must stop the children
            proc.wait()
        wait_until(lambda: not any(alive(pid) for pid in children), 30, 0.2,
                   "children of a killed `redismon up` to exit")
    finally:
        server.cleanup()


def test_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run([REDISMON, "up"], cwd=tmp_path, capture_output=True, text=True,
                                env=monitor_env(WEB_PORT=str(port)), timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_a_bad_setting_stops_up_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run([REDISMON, "up"], cwd=tmp_path, capture_output=True, text=True,
                            env=monitor_env(REDIS_MAX_CONNECTIONS="abc"), timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == \
        "redismon: REDIS_MAX_CONNECTIONS='abc': expected a whole number >= 1"
