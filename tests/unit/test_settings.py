from __future__ import annotations

from pathlib import Path

import pytest

from monitor.settings import Settings, SettingsError, load_settings, mask_url


def test_defaults_match_the_design_card() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.metrics_collection_interval == 10.0
    assert settings.metrics_prefix == "jeex_redis"
    assert (settings.hit_rate_warning_threshold, settings.hit_rate_critical_threshold) == (80, 70)


def test_values_are_parsed_to_their_types() -> None:
    settings = load_settings({"REDIS_MAX_CONNECTIONS": "25", "METRICS_COLLECTION_INTERVAL": "2.5",
                              "WEB_PORT": "9000", "MEMORY_WARNING_THRESHOLD": "75"})
    assert settings.redis_max_connections == 25
    assert settings.metrics_collection_interval == 2.5
    assert settings.web_port == 9000
    assert settings.memory_warning_threshold == 75.0


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("REDIS_MAX_CONNECTIONS", "abc", "REDIS_MAX_CONNECTIONS='abc': expected a whole number"),
    ("METRICS_COLLECTION_INTERVAL", "-1", "METRICS_COLLECTION_INTERVAL='-1': expected a positive"),
    ("REDIS_HEALTH_CHECK_INTERVAL", "nan", "REDIS_HEALTH_CHECK_INTERVAL='nan'"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL='localhost:6379': expected a URL"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL='mysql://x/y': expected a URL"),
    ("WEB_PORT", "70000", "WEB_PORT='70000': expected a port"),
    ("METRICS_PREFIX", "jeex-redis", "METRICS_PREFIX='jeex-redis'"),
    ("MEMORY_WARNING_THRESHOLD", "120", "MEMORY_WARNING_THRESHOLD='120': expected a percentage"),
    ("CELERY_BROKER_URL", "kafka://x", "CELERY_BROKER_URL='kafka://x'"),
])
def test_a_bad_value_names_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({name: value})
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)


def test_a_bad_url_does_not_echo_its_password() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"REDIS_URL": "redis://u:s3cret@host:notaport/0"})
    assert "s3cret" not in str(error.value)


def test_warning_above_critical_is_refused() -> None:
    with pytest.raises(SettingsError, match="MEMORY_WARNING_THRESHOLD"):
        load_settings({"MEMORY_WARNING_THRESHOLD": "95"})


def test_file_variant_reads_a_secret(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("redis://:pw@db.example:6380/2\n")
    assert load_settings({"REDIS_URL_FILE": str(secret)}).redis_url == "redis://:pw@db.example:6380/2"


def test_unreadable_file_variant_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="REDIS_URL_FILE=.*cannot read it"):
        load_settings({"REDIS_URL_FILE": str(tmp_path / "missing")})


def test_embedded_broker_lives_beside_the_database() -> None:
    settings = load_settings({"DATABASE_URL": "sqlite:////var/lib/redismon/history.db"})
    assert settings.broker_url == "sqla+sqlite:////var/lib/redismon/history-broker.db"
    assert load_settings({"CELERY_BROKER_URL": "amqp://guest@localhost//"}).broker_url.startswith(
        "amqp://")


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://user:pw@host:6379/0", "redis://user:***@host:6379/0"),
    ("redis://:pw@host/1", "redis://:***@host/1"),
    ("redis://host:6379/0", "redis://host:6379/0"),
    ("postgresql+psycopg://app:pw@db:5432/m", "postgresql+psycopg://app:***@db:5432/m"),
])
def test_mask_url_hides_passwords(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_millisecond_thresholds_are_not_percentages() -> None:
    settings = load_settings({"RESPONSE_TIME_CRITICAL_THRESHOLD": "1000.0",
                              "RESPONSE_TIME_WARNING_THRESHOLD": "150",
                              "SLOW_COMMAND_THRESHOLD": "250"})
    assert settings.response_time_critical_threshold == 1000.0
    assert settings.slow_command_threshold == 250.0
    with pytest.raises(SettingsError, match="expected a positive number of milliseconds"):
        load_settings({"SLOW_COMMAND_THRESHOLD": "0"})
    with pytest.raises(SettingsError, match="RESPONSE_TIME_WARNING_THRESHOLD=2000.0 must not"):
        load_settings({"RESPONSE_TIME_WARNING_THRESHOLD": "2000"})


def test_every_setting_round_trips_from_its_default_text() -> None:
    from dataclasses import fields

    defaults = Settings()
    env = {f.name.upper(): str(getattr(defaults, f.name)) for f in fields(Settings)
           if getattr(defaults, f.name) is not None}
    assert load_settings(env) == defaults


def test_an_unparsable_url_is_one_line() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL: not a valid URL"):
        load_settings({"REDIS_URL": "redis://[::1"})
