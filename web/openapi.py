"""The OpenAPI 3.1 description of the REST API, served at /monitoring/redis/openapi.json."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from pydantic import BaseModel

from monitor import __version__
from monitor.alerts.lifecycle import STATUSES
from monitor.alerts.rules import RuleInput, RulePatch
from monitor.alerts.service import ActionInput, ChannelInput
from monitor.alerts.silences import SilenceInput
from monitor.health.checks import HealthCheckType

bp = Blueprint("openapi", __name__)
PREFIX = "/monitoring/redis"
# Targets the API accepts; loopback only in the spec's example pattern is not a restriction of
# the server, which takes any redis://, rediss:// or unix:// URL.
TARGET_URL = {"type": "string", "pattern": "^(redis|rediss|unix)://[^\\s]+$",
              "example": "redis://127.0.0.1:6379/0"}
NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"}
ERROR = {"$ref": "#/components/schemas/Error"}
OBJECT = {"type": "object"}


def _model(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    """Add a pydantic model's JSON schema to the components and return a reference to it."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = sub
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(*codes: int, ok: int = 200, body: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok): {"description": "OK", **(
        _json(body or OBJECT) if ok != 204 else {})}}
    for code in codes:
        responses[str(code)] = {"description": "Error", **_json(ERROR)}
    return responses


def _health_responses(*codes: int) -> dict[str, Any]:
    """Health answers with the same report on 200 and 503 (a load balancer reads the code)."""
    responses = _responses(*codes)
    responses["503"] = {"description": "unhealthy or unknown", **_json(OBJECT)}
    return responses


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": POSITIVE}


POSITIVE = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
TIME = {"type": "string", "format": "date-time"}


def spec() -> dict[str, Any]:
    """Build the whole document."""
    schemas: dict[str, Any] = {"Error": {
        "type": "object", "required": ["error", "message", "details"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                       "details": {"type": "object"}}}}
    target_body = {"type": "object", "required": ["name", "url"], "additionalProperties": False,
                   "properties": {"name": NAME, "url": TARGET_URL, "project": NAME,
                                  "enabled": {"type": "boolean"},
                                  "read_only": {"type": "boolean"}}}
    target_patch = {"type": "object", "additionalProperties": False,
                    "properties": {"name": NAME, "url": TARGET_URL,
                                   "enabled": {"type": "boolean"},
                                   "read_only": {"type": "boolean"}}}
    control_body = {"type": "object", "additionalProperties": False,
                    "properties": {"user": {"type": "string", "minLength": 1},
                                   "reason": {"type": ["string", "null"]}}}
    scope = [_query("project_id", POSITIVE), _query("target", {"type": "string"})]
    paths: dict[str, Any] = {
        "/health": {"get": {"summary": "Health of every target (503 when unhealthy)",
                            "parameters": scope + [_query("fresh", {"type": "boolean"})],
                            "responses": _health_responses(400)}},
        "/health/{check_type}": {"get": {
            "summary": "One health check of every target",
            "parameters": [{"name": "check_type", "in": "path", "required": True,
                            "schema": {"type": "string",
                                       "enum": [str(t) for t in HealthCheckType]}}]
            + scope + [_query("fresh", {"type": "boolean"})],
            "responses": _health_responses(400, 404)}},
        "/metrics": {"get": {"summary": "Latest values and 5-minute rates per target",
                             "parameters": scope, "responses": _responses(400)}},
        "/metrics/prometheus": {"get": {
            "summary": "Prometheus text exposition", "parameters": scope[:1],
            "responses": {"200": {"description": "OK", "content": {
                "text/plain": {"schema": {"type": "string"}}}},
                "400": {"description": "Error", **_json(ERROR)}}}},
        "/monitoring/status": {"get": {"summary": "Monitoring services status",
                                       "responses": _responses()}},
        "/monitoring/start": {"post": {"summary": "Resume monitoring",
                                       "requestBody": {"required": False,
                                                       **_json(control_body)},
                                       "responses": _responses(400)}},
        "/monitoring/stop": {"post": {"summary": "Pause monitoring",
                                      "requestBody": {"required": False, **_json(control_body)},
                                      "responses": _responses(400)}},
        "/targets": {
            "get": {"summary": "List targets", "parameters": scope[:1],
                    "responses": _responses(400)},
            "post": {"summary": "Add a target", "requestBody": {"required": True,
                                                                **_json(target_body)},
                     "responses": _responses(400, 409, ok=201)}},
        "/targets/{target_id}": {
            "parameters": [_path("target_id")],
            "get": {"summary": "One target", "responses": _responses(404)},
            "patch": {"summary": "Change a target",
                      "requestBody": {"required": True, **_json(target_patch)},
                      "responses": _responses(400, 404, 409)},
            "delete": {"summary": "Remove a target", "responses": _responses(404, ok=204)}},
        "/alerts": {"get": {"summary": "Alerts, newest first", "parameters": [
            _query("status", {"type": "string", "enum": list(STATUSES)}),
            _query("severity", {"type": "string", "enum": ["info", "warning", "critical"]}),
            _query("project_id", POSITIVE), _query("target", {"type": "string"}),
            _query("rule", {"type": "string"}), _query("since", TIME), _query("until", TIME),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            _query("cursor", POSITIVE)], "responses": _responses(400)}},
        "/alerts/summary": {"get": {"summary": "Alert counts and mean times",
                                    "parameters": scope[:1], "responses": _responses(400)}},
        "/alerts/metrics": {"get": {"summary": "What a rule can watch",
                                    "responses": _responses()}},
        "/alerts/{alert_id}": {"get": {"summary": "One alert with its events",
                                       "parameters": [_path("alert_id")],
                                       "responses": _responses(404)}},
        "/alerts/{alert_id}/action": {"post": {
            "summary": "Acknowledge, unacknowledge, resolve or silence",
            "parameters": [_path("alert_id")],
            "requestBody": {"required": True, **_json(_model(ActionInput, schemas))},
            "responses": _responses(400, 404, 409)}},
        "/alerts/rules": {
            "get": {"summary": "Alert rules", "responses": _responses()},
            "post": {"summary": "Create a rule",
                     "requestBody": {"required": True, **_json(_model(RuleInput, schemas))},
                     "responses": _responses(400, 409, ok=201)}},
        "/alerts/rules/{rule_id}": {
            "parameters": [_path("rule_id")],
            "get": {"summary": "One rule", "responses": _responses(404)},
            "patch": {"summary": "Change a rule",
                      "requestBody": {"required": True, **_json(_model(RulePatch, schemas))},
                      "responses": _responses(400, 404, 409)},
            "delete": {"summary": "Delete a custom rule",
                       "responses": _responses(404, 409, ok=204)}},
        "/alerts/silences": {
            "get": {"summary": "Silences", "responses": _responses()},
            "post": {"summary": "Create a silence",
                     "requestBody": {"required": True, **_json(_model(SilenceInput, schemas))},
                     "responses": _responses(400, ok=201)}},
        "/alerts/silences/{silence_id}": {"delete": {
            "summary": "Expire a silence", "parameters": [_path("silence_id"),
                                                          _query("user", {"type": "string"})],
            "responses": _responses(404)}},
        "/alerts/channels": {
            "get": {"summary": "Notification channels", "responses": _responses()},
            "post": {"summary": "Create a channel",
                     "requestBody": {"required": True, **_json(_model(ChannelInput, schemas))},
                     "responses": _responses(400, 409, ok=201)}},
        "/alerts/channels/{channel_id}": {"delete": {
            "summary": "Delete a channel", "parameters": [_path("channel_id")],
            "responses": _responses(404, ok=204)}},
    }
    return {"openapi": "3.1.0",
            "info": {"title": "Redis Monitor", "version": __version__},
            "servers": [{"url": PREFIX}], "paths": paths,
            "components": {"schemas": schemas}}


@bp.get("/openapi.json")
def document() -> Any:
    """Serve the OpenAPI document."""
    return jsonify(spec())
