"""Targets: list, add, show, change and remove the Redis servers we watch."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from monitor.db import Project, transaction
from monitor.targets import (
    DEFAULT_PROJECT,
    TargetError,
    add_target,
    find_target,
    list_targets,
    public_target,
    update_target,
)
from web import runtime_of
from web.params import json_body, optional_int

bp = Blueprint("targets", __name__)
FIELDS = {"name", "url", "project", "enabled", "read_only"}


def _bools(body: dict[str, Any]) -> None:
    for flag in ("enabled", "read_only"):
        if flag in body and not isinstance(body[flag], bool):
            raise TargetError("invalid", f"{flag} must be true or false")


@bp.get("/targets")
def index() -> Any:
    """List targets, optionally of one project."""
    rt = runtime_of(current_app)
    with rt.sessions() as session:
        pairs = list_targets(session, optional_int("project_id"))
        return jsonify({"targets": [public_target(t, p) for t, p in pairs]})


@bp.post("/targets")
def create() -> Any:
    """Add a target to a project (created on first use)."""
    body = json_body(FIELDS, {"name", "url"})
    _bools(body)
    rt = runtime_of(current_app)
    project = body.get("project", DEFAULT_PROJECT)
    with transaction(rt.sessions) as session:
        target = add_target(session, project=project, name=body["name"], url=body["url"],
                            now=rt.clock(), enabled=body.get("enabled", True),
                            read_only=body.get("read_only", False))
        return jsonify(public_target(target, project)), 201


def _show(session: Any, target_id: int) -> dict[str, Any]:
    target = find_target(session, target_id)
    project = session.get(Project, target.project_id)
    return public_target(target, project.name)


@bp.get("/targets/<id:target_id>")
def show(target_id: int) -> Any:
    """Show one target."""
    rt = runtime_of(current_app)
    with rt.sessions() as session:
        return jsonify(_show(session, target_id))


@bp.patch("/targets/<id:target_id>")
def change(target_id: int) -> Any:
    """Change a target's name, URL, or flags."""
    body = json_body(FIELDS - {"project"})
    _bools(body)
    rt = runtime_of(current_app)
    with transaction(rt.sessions) as session:
        update_target(session, find_target(session, target_id), body, rt.clock())
        return jsonify(_show(session, target_id))


@bp.delete("/targets/<id:target_id>")
def remove(target_id: int) -> Any:
    """Remove a target and its history."""
    rt = runtime_of(current_app)
    with transaction(rt.sessions) as session:
        session.delete(find_target(session, target_id))
    return "", 204
