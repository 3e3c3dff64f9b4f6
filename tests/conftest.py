"""Shared fixtures: spawned Redis servers, PostgreSQL and SQLite databases, runtimes."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.runtime import Runtime, build_runtime, migrate
from monitor.settings import Settings
from tests.support.servers import RedisServer, create_database, drop_database

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start redis-server processes for this module; all are stopped at its end."""
    servers: list[RedisServer] = []

    def start(*args: str) -> RedisServer:
        server = RedisServer(args=args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.cleanup()


@pytest.fixture(scope="module")
def redis_server(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    """One spawned Redis for the module."""
    return redis_factory()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for the module."""
    url = create_database()
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def pg_runtime(pg_url: str) -> Iterator[Runtime]:
    """A runtime on the module's PostgreSQL database."""
    rt = build_runtime(Settings(database_url=pg_url))
    yield rt
    rt.engine.dispose()


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on a fresh, migrated SQLite file."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    migrate(url)
    rt = build_runtime(Settings(database_url=url))
    yield rt
    rt.engine.dispose()


def with_settings(rt: Runtime, **changes: object) -> Runtime:
    """Return the runtime with some settings changed."""
    return replace(rt, settings=replace(rt.settings, **changes))
