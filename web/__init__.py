"""The Flask app: a thin layer over monitor that reads the history database."""
from __future__ import annotations

from typing import Any

from flask import Flask

from monitor.runtime import Runtime, build_runtime
from monitor.settings import Settings, load_settings
from web.errors import register_errors
from web.params import IdConverter

PREFIX = "/monitoring/redis"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `test_config` may carry a ready `RUNTIME` or `SETTINGS`."""
    app = Flask(__name__)
    config = test_config or {}
    rt: Runtime = config.get("RUNTIME") or build_runtime(
        config.get("SETTINGS") or load_settings())
    app.extensions["redismon"] = rt
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter
    register_errors(app)

    from web import alerts, control, health, metrics, openapi, targets

    for blueprint in (metrics.bp, targets.bp, control.bp, health.bp, alerts.bp, openapi.bp):
        app.register_blueprint(blueprint, url_prefix=PREFIX)
    return app


def settings_of(app: Flask) -> Settings:
    """Return the settings of this app."""
    return runtime_of(app).settings


def runtime_of(app: Flask) -> Runtime:
    """Return the runtime (settings, sessions, clock) of this app."""
    rt: Runtime = app.extensions["redismon"]
    return rt
