"""Metrics: the JSON summary and the Prometheus text."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.exposition import RATE_WINDOW, HistoryCollector
from monitor.history import latest_views
from monitor.summary import target_summary
from web import runtime_of
from web.params import optional_int

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def summary() -> Any:
    """Return the latest values, 5-minute rates, hit rate and memory % of each target."""
    rt = runtime_of(current_app)
    now = rt.clock()
    with rt.sessions() as session:
        views = latest_views(session, now, RATE_WINDOW, project_id=optional_int("project_id"),
                             target_name=request.args.get("target") or None)
    return jsonify({"generated_at": now.isoformat(),
                    "targets": [target_summary(v, now) for v in views]})


@bp.get("/metrics/prometheus")
def prometheus() -> Response:
    """Return Prometheus text built from the history at this scrape."""
    rt = runtime_of(current_app)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HistoryCollector(rt.sessions, rt.settings.metrics_prefix, rt.clock,
                                       project_id=optional_int("project_id")))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
