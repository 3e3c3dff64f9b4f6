"""Real servers for tests: redis-server processes and throwaway PostgreSQL databases."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from sqlalchemy.engine import make_url

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def die_with_parent() -> None:
    """Stop a spawned server when the test process dies, even by SIGKILL (Linux)."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """Return a TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = ""):  # type: ignore[no-untyped-def]
    """Poll `predicate` until it returns a truthy value; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}; "
                         f"last value {last!r}")


@dataclass
class RedisServer:
    """A redis-server of our own on a free port, which a test may stop and start again."""

    port: int = field(default_factory=free_port)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="redismon-r-")))
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        wait_until(self._answers, 10, message=f"redis-server on {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, protocol=2,
                           driver_info=None, socket_timeout=5)

    def fill_memory(self, percent: float) -> None:
        """Write 1 kB values until used_memory passes `percent` of maxmemory."""
        client = self.client()
        maxmemory = int(client.config_get("maxmemory")["maxmemory"])
        i = 0
        # One small SET at a time: a big pipeline's query buffer inflates used_memory briefly.
        while int(client.info("memory")["used_memory"]) < maxmemory * percent / 100:
            client.set(f"fill:{i}", "x" * 1000)
            i += 1

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        self.process.wait(10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _admin_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


def create_database() -> str:
    """Create an empty PostgreSQL database and return its SQLAlchemy URL."""
    name = f"redismon_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(TEST_DATABASE_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database made by create_database, closing its connections first."""
    name = make_url(url).database
    with psycopg.connect(_admin_dsn(TEST_DATABASE_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
