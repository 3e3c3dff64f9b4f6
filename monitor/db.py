"""SQLAlchemy 2 models and the engine/session factory for the history store."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store UTC-aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL, JSON text on SQLite.
JsonDoc = JSON().with_variant(postgresql.JSONB(), "postgresql")
# BIGINT autoincrement must be INTEGER on SQLite to alias the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Target(Base):
    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)  # may hold a password: never serialise it raw
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Sample(Base):
    """One probe of one target; `slot` makes the write idempotent per collection interval."""

    __tablename__ = "samples"
    __table_args__ = (
        UniqueConstraint("target_id", "slot"),
        Index("ix_samples_target_time", "target_id", "collected_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    slot: Mapped[int] = mapped_column(BigInteger)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    up: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    probe_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Text JSON, not JSONB: cheaper to insert, and never queried inside.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TargetState(Base):
    """The latest known state of a target, updated after every sample."""

    __tablename__ = "target_state"

    target_id: Mapped[int] = mapped_column(
        ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True
    )
    last_sample_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_collected_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    up: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_slowlog_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    refused_commands: Mapped[list[str]] = mapped_column(JSON, default=list)
    # INFO latencystats is priced like the rest of INFO together: fetched once a minute.
    latencystats: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    latencystats_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    slowlog_fetch: Mapped[int] = mapped_column(Integer, default=10)
    # A collection claims the target until this time, so two beats never probe twice.
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    health_claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SlowlogEntry(Base):
    """A slowlog entry seen once; arguments are not stored, only the command name."""

    __tablename__ = "slowlog_entries"
    __table_args__ = (
        UniqueConstraint("target_id", "run_id", "entry_id"),
        Index("ix_slowlog_target_time", "target_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    duration_us: Mapped[int] = mapped_column(BigInteger)
    command: Mapped[str] = mapped_column(String(64))
    arg_count: Mapped[int] = mapped_column(Integer)
    client_addr: Mapped[str | None] = mapped_column(String(100), nullable=True)
    client_name: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Heartbeat(Base):
    """Liveness of a beat or worker process."""

    __tablename__ = "heartbeats"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)


class TaskRun(Base):
    """The last run of each periodic task."""

    __tablename__ = "task_runs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so several processes can share it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip per checkout on the collection path. A connection
    # broken by a database restart fails one task, and SQLAlchemy then refreshes the pool.
    return create_engine(url, pool_size=5, max_overflow=5, pool_recycle=1800)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory that keeps loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session inside a transaction that commits on success."""
    with factory() as session, session.begin():
        yield session


def is_unique_violation(exc: Exception) -> bool:
    """Tell a unique-constraint violation from other integrity errors, on both backends."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(orig)


def relax_commit(session: Session) -> None:
    """Let PostgreSQL confirm this transaction before its WAL is flushed to disk.

    Only for samples: they are taken again every interval, so a database crash can lose the
    last fraction of a second of them (never alert or notification state). It saves an fsync
    per collection (measured: about 1 ms of 7-9 ms, bench/RESULTS.md).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


@contextmanager
def autocommit(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session whose statements commit one by one (no BEGIN/COMMIT round trips)."""
    with factory() as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


def insert_for(session: Session, model: type[Base]) -> Any:
    """Return the dialect's Core INSERT (it knows ON CONFLICT; Core skips the ORM's DML work)."""
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def core_update(model: type[Base]) -> Any:
    """Return a Core UPDATE of a model's table: the ORM's bulk-update machinery costs more than
    the statement itself on the collection path."""
    from sqlalchemy import update

    return update(model.__table__)


def insert_ignore(session: Session, model: type[Base], rows: Sequence[dict[str, Any]],
                  keys: Sequence[str]) -> int:
    """Insert rows, skipping those whose keys already exist; return how many were new."""
    if not rows:
        return 0
    stmt = insert_for(session, model).values(list(rows)).on_conflict_do_nothing(
        index_elements=list(keys)
    )
    return int(session.execute(stmt).rowcount or 0)


class CircuitBreaker(Base):
    """The circuit breaker of a target, shared by every worker."""

    __tablename__ = "circuit_breakers"

    target_id: Mapped[int] = mapped_column(
        ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(10), default="closed")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    times_opened: Mapped[int] = mapped_column(Integer, default=0)
    next_probe_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class HealthResult(Base):
    """One run of the health checks of one target; `slot` makes the write idempotent."""

    __tablename__ = "health_results"
    __table_args__ = (
        UniqueConstraint("target_id", "slot"),
        Index("ix_health_target_time", "target_id", "checked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    slot: Mapped[int] = mapped_column(BigInteger)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(10))
    response_time_ms: Mapped[float] = mapped_column(Float)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)


class ControlFlag(Base):
    """A persisted switch every dispatch task obeys (monitoring on or paused)."""

    __tablename__ = "control_flags"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Lease(Base):
    """A named lease claimed with a conditional UPDATE, so two beats never run a job twice."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    held_until: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertRule(Base):
    """A threshold rule over a metric of the catalogue or a health check, scoped."""

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(100))
    operator: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    clear_threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    for_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    keep_firing_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    severity: Mapped[str] = mapped_column(String(10))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    summary: Mapped[str] = mapped_column(Text)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True)
    target_id: Mapped[int | None] = mapped_column(
        ForeignKey("targets.id", ondelete="CASCADE"), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    # A built-in rule follows the threshold settings until someone changes it by hand.
    customized: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Alert(Base):
    """One occurrence of a rule firing on a target, from pending to resolved."""

    __tablename__ = "alerts"
    __table_args__ = (
        # At most one open alert per rule and target: a constraint, not a hope.
        Index("uq_alerts_open_per_rule_target", "rule_id", "target_id", unique=True,
              postgresql_where=text("status <> 'resolved'"),
              sqlite_where=text("status <> 'resolved'")),
        Index("ix_alerts_status", "status", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(15))
    severity: Mapped[str] = mapped_column(String(10))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    fingerprint: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ack_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    ack_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    evaluation: Mapped[str] = mapped_column(String(10), default="firing")  # firing|band|stale


class AlertEvent(Base):
    """A transition of an alert, kept as history."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert", "alert_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(200))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class Silence(Base):
    """Matchers that suppress notifications between two times; expired, never deleted."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matchers: Mapped[dict[str, str]] = mapped_column(JSON)  # project, target, rule, severity
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expired_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class NotificationChannel(Base):
    """Where a project's notifications go."""

    __tablename__ = "notification_channels"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # may hold secrets
    send_resolved: Mapped[bool] = mapped_column(Boolean, default=True)
    repeat_interval_seconds: Mapped[float] = mapped_column(Float, default=4 * 3600.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Notification(Base):
    """One message owed to one channel about one alert; claimed before it is sent."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel_id", "kind", "sequence"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # firing | resolved
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # 0 first, then repeats
    # pending | sending | sent | failed
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
