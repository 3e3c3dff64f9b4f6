"""Alerts: list, summary, detail, actions, rules, silences and notification channels."""
from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from monitor.alerts.lifecycle import STATUSES
from monitor.alerts.rules import RuleInput, RulePatch, rule_view
from monitor.alerts.service import (
    ActionInput,
    AlertError,
    AlertFilter,
    ChannelInput,
    act,
    alert_detail,
    alert_summary,
    channel_view,
    create_channel,
    create_rule,
    get_rule,
    list_alerts,
    list_rules,
    new_silence,
    update_rule,
)
from monitor.alerts.silences import SilenceInput, expire_silence, silence_view
from monitor.alerts.values import WATCHABLE
from monitor.db import NotificationChannel, Silence, transaction
from web import runtime_of
from web.errors import ApiError
from web.params import optional_int

bp = Blueprint("alerts", __name__)
Model = TypeVar("Model", bound=BaseModel)
SEVERITIES = ("info", "warning", "critical")
MAX_LIMIT = 500


def parse_body(model: type[Model]) -> Model:
    """Validate the JSON body with a pydantic model; 400 with the field errors otherwise."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "problem": e["msg"]}
                  for e in exc.errors()]
        first = errors[0]
        raise ApiError(400, "invalid_body", f"{first['field']}: {first['problem']}",
                       {"errors": errors}) from None


def _alert_error(exc: AlertError) -> ApiError:
    status = {"invalid": 400, "not_found": 404, "conflict": 409}[exc.code]
    return ApiError(status, exc.code, str(exc), exc.details)


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is not None and value not in allowed:
        raise ApiError(400, "invalid_parameter", f"{name} must be one of {', '.join(allowed)}",
                       {"parameter": name, "allowed": list(allowed)})
    return value


def _time(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an ISO 8601 time",
                       {"parameter": name, "value": raw}) from None
    if value.tzinfo is None:
        raise ApiError(400, "invalid_parameter", f"{name} needs a timezone, e.g. Z")
    return value


def _filter() -> AlertFilter:
    limit = optional_int("limit")
    limit = 50 if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_parameter", f"limit must be between 1 and {MAX_LIMIT}")
    return AlertFilter(status=_choice("status", STATUSES), severity=_choice("severity", SEVERITIES),
                       project_id=optional_int("project_id"),
                       target=request.args.get("target") or None,
                       rule=request.args.get("rule") or None, since=_time("since"),
                       until=_time("until"), limit=limit, cursor=optional_int("cursor"))


def _found(session: Any, model: Any, row_id: int, kind: str) -> Any:
    """Return a row by id or raise not_found naming its kind."""
    row = session.get(model, row_id)
    if row is None:
        raise AlertError("not_found", f"no {kind} {row_id}")
    return row


def _run(func: Any, *args: Any, write: bool = False) -> Any:
    rt = runtime_of(current_app)
    try:
        if write:
            with transaction(rt.sessions) as session:
                return func(session, *args)
        with rt.sessions() as session:
            return func(session, *args)
    except AlertError as exc:
        raise _alert_error(exc) from None


@bp.get("/alerts")
def index() -> Any:
    """List alerts, newest first, with filters and cursor pagination."""
    page, cursor = _run(list_alerts, _filter())
    return jsonify({"alerts": page, "next_cursor": cursor})


@bp.get("/alerts/summary")
def summary() -> Any:
    """Count open alerts and report mean time to acknowledge and to resolve over 24 h."""
    rt = runtime_of(current_app)
    return jsonify(_run(alert_summary, rt.clock(), optional_int("project_id")))


@bp.get("/alerts/metrics")
def metrics() -> Any:
    """List what a rule can watch."""
    return jsonify({"metrics": [{"name": name, "unit": w.unit, "help": w.help}
                                for name, w in sorted(WATCHABLE.items())]})


@bp.get("/alerts/<id:alert_id>")
def show(alert_id: int) -> Any:
    """Show one alert with its events."""
    return jsonify(_run(alert_detail, alert_id))


@bp.post("/alerts/<id:alert_id>/action")
def action(alert_id: int) -> Any:
    """Acknowledge, unacknowledge, resolve or silence an alert."""
    data = parse_body(ActionInput)
    now = runtime_of(current_app).clock()
    _run(lambda session: act(session, alert_id, data, now), write=True)
    return jsonify(_run(alert_detail, alert_id))


# --- rules -------------------------------------------------------------------------------


@bp.get("/alerts/rules")
def rules() -> Any:
    """List every rule, built-in and custom."""
    return jsonify({"rules": _run(list_rules)})


def _created(model: type[Model], create: Any) -> Any:
    """Validate the body, store it with `create(session, data, now)`, answer 201."""
    data = parse_body(model)
    now = runtime_of(current_app).clock()
    return jsonify(_run(lambda s: create(s, data, now), write=True)), 201


@bp.post("/alerts/rules")
def add_rule() -> Any:
    """Create a rule."""
    return _created(RuleInput, create_rule)


@bp.get("/alerts/rules/<id:rule_id>")
def show_rule(rule_id: int) -> Any:
    """Show one rule."""
    return jsonify(_run(lambda s: rule_view(get_rule(s, rule_id))))


@bp.patch("/alerts/rules/<id:rule_id>")
def change_rule(rule_id: int) -> Any:
    """Change a rule; a built-in rule changed by hand stops following the settings."""
    patch = parse_body(RulePatch)
    now = runtime_of(current_app).clock()
    return jsonify(_run(lambda s: update_rule(s, get_rule(s, rule_id), patch, now), write=True))


@bp.delete("/alerts/rules/<id:rule_id>")
def remove_rule(rule_id: int) -> Any:
    """Delete a custom rule (built-in ones can only be disabled)."""
    def delete(session: Any) -> None:
        rule = get_rule(session, rule_id)
        if rule.builtin:
            raise AlertError("conflict", "built-in rules cannot be deleted; PATCH enabled=false")
        session.delete(rule)

    _run(delete, write=True)
    return "", 204


# --- silences ----------------------------------------------------------------------------


@bp.get("/alerts/silences")
def silences() -> Any:
    """List silences, newest first, with their state."""
    now = runtime_of(current_app).clock()
    rows = _run(lambda s: list(s.scalars(select(Silence).order_by(Silence.id.desc()))))
    return jsonify({"silences": [silence_view(x, now) for x in rows]})


@bp.post("/alerts/silences")
def add_silence() -> Any:
    """Create a silence from matchers, with ends_at or a duration."""
    data = parse_body(SilenceInput)
    now = runtime_of(current_app).clock()
    silence = _run(lambda s: new_silence(s, data, now), write=True)
    return jsonify(silence_view(silence, now)), 201


@bp.delete("/alerts/silences/<id:silence_id>")
def end_silence(silence_id: int) -> Any:
    """Expire a silence now; it stays in the history."""
    now = runtime_of(current_app).clock()
    actor = request.args.get("user") or f"anonymous@{request.remote_addr}"

    def expire(session: Any) -> Silence:
        return expire_silence(session, _found(session, Silence, silence_id, "silence"), actor,
                              now)

    return jsonify(silence_view(_run(expire, write=True), now))


# --- channels ----------------------------------------------------------------------------


@bp.get("/alerts/channels")
def channels() -> Any:
    """List notification channels; secrets are masked."""
    rows = _run(lambda s: list(s.scalars(select(NotificationChannel)
                                         .order_by(NotificationChannel.id))))
    return jsonify({"channels": [channel_view(c) for c in rows]})


@bp.post("/alerts/channels")
def add_channel() -> Any:
    """Create a channel: webhook, slack, email, alertmanager or log."""
    return _created(ChannelInput, create_channel)


@bp.delete("/alerts/channels/<id:channel_id>")
def remove_channel(channel_id: int) -> Any:
    """Delete a channel and its pending notifications."""
    _run(lambda s: s.delete(_found(s, NotificationChannel, channel_id, "channel")), write=True)
    return "", 204
