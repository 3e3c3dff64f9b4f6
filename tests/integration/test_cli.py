"""The `redismon` command as a person types it, against PostgreSQL and a spawned Redis."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import monitor_env
from tests.support.servers import RedisServer

REDISMON = str(Path(sys.executable).parent / "redismon")


@pytest.fixture(scope="module")
def run(pg_url: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("cli")
    env = monitor_env(DATABASE_URL=pg_url, REDIS_URL=redis_server.url,
                      CELERY_BROKER_URL="redis://127.0.0.1:6379/11")

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([REDISMON, *args], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    return call


def test_every_command_has_help(run) -> None:  # type: ignore[no-untyped-def]
    for args in (["--help"], ["up", "--help"], ["targets", "add", "--help"], ["check", "--help"],
                 ["alerts", "ack", "--help"], ["status", "--help"], ["migrate", "--help"]):
        result = run(*args)
        assert result.returncode == 0 and "Usage:" in result.stdout, args


def test_targets_add_list_remove_masks_passwords(run) -> None:  # type: ignore[no-untyped-def]
    added = run("targets", "add", "sessions", "redis://app:hunter2@10.1.2.3:6380/2",
                "--project", "shop")
    assert added.returncode == 0, added.stderr
    assert "hunter2" not in added.stdout and "app:***@" in added.stdout
    listing = run("targets", "list").stdout
    assert "sessions" in listing and "hunter2" not in listing
    assert run("targets", "add", "sessions", "redis://h:1", "--project", "shop").returncode == 2
    removed = run("targets", "remove", "sessions", "--project", "shop")
    assert removed.returncode == 0 and "sessions" not in run("targets", "list").stdout


def test_bad_input_is_one_line_and_exit_2(run) -> None:  # type: ignore[no-untyped-def]
    for args in (["targets", "add", "x", "http://nope"], ["targets", "remove", "ghost"],
                 ["alerts", "ack", "424242"], ["alerts", "resolve", "424242"]):
        result = run(*args)
        assert result.returncode == 2, args
        assert result.stderr.strip().startswith("redismon: ") and "\n" not in \
            result.stderr.strip(), result.stderr
        assert "Traceback" not in result.stderr


def test_check_prints_every_check_without_colour_when_piped(run) -> None:  # type: ignore[no-untyped-def]
    result = run("check", "--target", "default")
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("connectivity", "memory_usage", "connection_pool", "performance",
                  "persistence", "replication"):
        assert check in result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes outside a terminal


def test_status_and_alerts_list(run) -> None:  # type: ignore[no-untyped-def]
    status = run("status")
    assert status.returncode == 0 and status.stdout.startswith("monitoring running")
    listed = run("alerts", "list", "--status", "active")
    assert listed.returncode == 0


def test_an_unreachable_database_is_one_line(run) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run([REDISMON, "status"], capture_output=True, text=True, timeout=60,
                            env=monitor_env(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/x"),
                            check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("redismon: cannot reach the database")
    assert "Traceback" not in result.stderr
