"""Typed settings read from the environment; a bad value stops the process with one line."""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

EMBEDDED_BROKER = "embedded"


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    redis_max_connections: int = 10
    redis_connection_timeout: float = 10.0
    redis_operation_timeout: float = 10.0
    redis_health_check_interval: float = 30.0
    redis_max_retries: int = 3
    redis_retry_delay: float = 1.0
    metrics_collection_interval: float = 10.0
    alert_evaluation_interval: float = 15.0
    database_url: str = "sqlite:///redismon.db"
    celery_broker_url: str = EMBEDDED_BROKER
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    metrics_prefix: str = "jeex_redis"
    retention_raw_days: int = 7
    retention_rollup_days: int = 400
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_protocol: str = "grpc"
    otel_service_name: str = "jeex-idea-api"
    otel_service_version: str = "0.1.0"
    memory_warning_threshold: float = 80.0
    memory_critical_threshold: float = 90.0
    slow_command_threshold: float = 100.0
    response_time_warning_threshold: float = 100.0
    response_time_critical_threshold: float = 1000.0
    connection_pool_warning_threshold: float = 80.0
    connection_pool_critical_threshold: float = 95.0
    error_rate_threshold: float = 5.0
    hit_rate_warning_threshold: float = 80.0
    hit_rate_critical_threshold: float = 70.0

    @property
    def broker_url(self) -> str:
        """Return the Celery broker URL, resolving the embedded default next to the database."""
        if self.celery_broker_url != EMBEDDED_BROKER:
            return self.celery_broker_url
        return "sqla+sqlite:///" + embedded_broker_path(self.database_url)


def embedded_broker_path(database_url: str) -> str:
    """Place the embedded broker's SQLite file beside the history database."""
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        db_path = database_url[len("sqlite:///"):]
        base, _ = os.path.splitext(db_path)
        return base + "-broker.db"
    return "redismon-broker.db"


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number of seconds, like 10.0") from None
    if not value > 0 or value != value or value == float("inf"):
        raise SettingsError(f"{name}={raw!r}: expected a positive number")
    return value


def _percentage(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a percentage between 0 and 100") from None
    if not 0 <= value <= 100:
        raise SettingsError(f"{name}={raw!r}: expected a percentage between 0 and 100")
    return value


def _milliseconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number of milliseconds") from None
    if not 0 < value < float("inf"):
        raise SettingsError(f"{name}={raw!r}: expected a positive number of milliseconds")
    return value


def _int_at_least(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected a whole number >= {minimum}") from None
        if value < minimum:
            raise SettingsError(f"{name}={raw!r}: expected a whole number >= {minimum}")
        return value

    return parse


def _url(*schemes: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        try:
            parts = urlsplit(raw)
        except ValueError:  # e.g. an unclosed [ of an IPv6 host
            raise SettingsError(f"{name}: not a valid URL") from None
        scheme = parts.scheme.split("+")[0]
        if scheme not in schemes:
            allowed = ", ".join(f"{s}://" for s in schemes)
            raise SettingsError(f"{name}={mask_url(raw)!r}: expected a URL starting with {allowed}")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise SettingsError(f"{name}={mask_url(raw)!r}: the port is not a number") from None
        return raw

    return parse


def _broker(name: str, raw: str) -> str:
    if raw == EMBEDDED_BROKER:
        return raw
    return _url("redis", "rediss", "amqp", "amqps", "sqla", "pyamqp")(name, raw)


def _prefix(name: str, raw: str) -> str:
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", raw):
        raise SettingsError(f"{name}={raw!r}: expected a Prometheus name like jeex_redis")
    return raw


def _port(name: str, raw: str) -> int:
    value = _int_at_least(1)(name, raw)
    if value > 65535:
        raise SettingsError(f"{name}={raw!r}: expected a port between 1 and 65535")
    return value


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise SettingsError(f"{name} is empty: expected a value")
    return raw


def _protocol(name: str, raw: str) -> str:
    if raw not in ("grpc", "http/protobuf"):
        raise SettingsError(f"{name}={raw!r}: expected grpc or http/protobuf")
    return raw


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "redis_url": _url("redis", "rediss", "unix"),
    "redis_max_connections": _int_at_least(1),
    "redis_connection_timeout": _positive_float,
    "redis_operation_timeout": _positive_float,
    "redis_health_check_interval": _positive_float,
    "redis_max_retries": _int_at_least(1),
    "redis_retry_delay": _positive_float,
    "metrics_collection_interval": _positive_float,
    "alert_evaluation_interval": _positive_float,
    "database_url": _url("sqlite", "postgresql", "postgres"),
    "celery_broker_url": _broker,
    "web_host": _text,
    "web_port": _port,
    "metrics_prefix": _prefix,
    "retention_raw_days": _int_at_least(1),
    "retention_rollup_days": _int_at_least(1),
    "otel_exporter_otlp_endpoint": _url("http", "https"),
    "otel_exporter_otlp_protocol": _protocol,
    "otel_service_name": _text,
    "otel_service_version": _text,
    "slow_command_threshold": _milliseconds,
    "response_time_warning_threshold": _milliseconds,
    "response_time_critical_threshold": _milliseconds,
}


def _read(environ: Mapping[str, str], name: str) -> str | None:
    """Return NAME, or the contents of the file named by NAME_FILE, or None."""
    if name in environ and environ[name] != "":
        return environ[name]
    path = environ.get(name + "_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise SettingsError(f"{name}_FILE={path!r}: cannot read it ({exc.strerror})") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment, raising SettingsError on the first bad value."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in fields(Settings):
        raw = _read(env, field.name.upper())
        if raw is None:
            continue
        parser = _PARSERS.get(field.name, _percentage)
        values[field.name] = parser(field.name.upper(), raw)
    settings = Settings(**values)
    _check_pairs(settings)
    return settings


def _check_pairs(settings: Settings) -> None:
    for kind in ("memory", "response_time", "connection_pool"):
        warning = getattr(settings, f"{kind}_warning_threshold")
        critical = getattr(settings, f"{kind}_critical_threshold")
        if warning > critical:
            raise SettingsError(f"{kind.upper()}_WARNING_THRESHOLD={warning} must not exceed "
                                f"{kind.upper()}_CRITICAL_THRESHOLD={critical}")
    if settings.hit_rate_warning_threshold < settings.hit_rate_critical_threshold:
        raise SettingsError(
            f"HIT_RATE_WARNING_THRESHOLD={settings.hit_rate_warning_threshold} must not be below "
            f"HIT_RATE_CRITICAL_THRESHOLD={settings.hit_rate_critical_threshold}")


def mask_url(url: str) -> str:
    """Hide the password of a URL: redis://user:***@host:port/db."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    user = parts.username or ""
    host_and_port = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host_and_port}").geturl()
