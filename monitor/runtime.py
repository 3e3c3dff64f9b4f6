"""Wire settings, the database and the clock together for a process."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from monitor.db import make_engine, make_sessionmaker, transaction, utcnow
from monitor.settings import Settings
from monitor.targets import ensure_default_target


def _migrations_dir() -> Path:
    """Find the Alembic scripts, shipped as the `migrations` package beside `monitor`."""
    import migrations

    return Path(migrations.__file__).resolve().parent


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = field(default=utcnow)


def build_runtime(settings: Settings) -> Runtime:
    """Create the engine and session factory for these settings."""
    engine = make_engine(settings.database_url)
    return Runtime(settings, engine, make_sessionmaker(engine))


def alembic_config(database_url: str):  # type: ignore[no-untyped-def]
    """Return an Alembic config pointing at our migrations and this database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def migrate(database_url: str) -> None:
    """Bring the database to the newest schema."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


def bootstrap(runtime: Runtime) -> None:
    """Migrate and make REDIS_URL the default target."""
    migrate(runtime.settings.database_url)
    from monitor.alerts.rules import sync_builtin_rules

    with transaction(runtime.sessions) as session:
        ensure_default_target(session, runtime.settings.redis_url, runtime.clock())
        sync_builtin_rules(session, runtime.settings, runtime.clock())
