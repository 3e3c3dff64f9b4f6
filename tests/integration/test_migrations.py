"""Migrations bring an empty or older database to head, on PostgreSQL and SQLite."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from monitor.db import Base
from monitor.runtime import alembic_config, migrate
from tests.support.servers import create_database, drop_database


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    url = create_database()
    yield url
    drop_database(url)


def test_an_empty_database_reaches_a_schema_equal_to_the_models(empty_url: str) -> None:
    migrate(empty_url)
    engine = create_engine(empty_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_an_older_database_is_upgraded_keeping_its_rows(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0001")
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, name, created_at) "
                          "VALUES (1, 'old', '2026-01-01T00:00:00+00:00')"))
    migrate(empty_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM projects")).scalar_one() == "old"
        assert "health_results" in inspect(conn).get_table_names()
    engine.dispose()
    migrate(empty_url)  # running it again is harmless
