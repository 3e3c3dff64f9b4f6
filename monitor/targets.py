"""Projects and targets: the things we monitor, scoped by project."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.db import Project, Target, is_unique_violation
from monitor.settings import SettingsError, _url, mask_url

DEFAULT_PROJECT = "default"
DEFAULT_TARGET = "default"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


class TargetError(ValueError):
    """A request about targets that cannot be carried out; `code` picks the HTTP status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def validate_name(kind: str, name: str) -> str:
    """Accept a short name usable as a Prometheus label value and in URLs."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise TargetError("invalid", f"{kind} name {name!r} must be 1-100 letters, digits, "
                                     "'_', '.', ':' or '-', starting with a letter or digit")
    return name


def validate_url(url: str) -> str:
    """Accept redis://, rediss:// and unix:// URLs only."""
    if not isinstance(url, str):
        raise TargetError("invalid", "url must be a string like redis://host:6379/0")
    try:
        return _url("redis", "rediss", "unix")("url", url)
    except SettingsError as exc:
        raise TargetError("invalid", str(exc)) from None


def ensure_project(session: Session, name: str, now: datetime) -> Project:
    """Return the project with this name, creating it if needed."""
    validate_name("project", name)
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        project = Project(name=name, created_at=now)
        session.add(project)
        session.flush()
    return project


def ensure_default_target(session: Session, url: str, now: datetime) -> Target:
    """Make REDIS_URL the target `default` of project `default`, following URL changes."""
    project = ensure_project(session, DEFAULT_PROJECT, now)
    target = session.scalar(select(Target).where(
        Target.project_id == project.id, Target.name == DEFAULT_TARGET))
    if target is None:
        target = Target(project_id=project.id, name=DEFAULT_TARGET, url=url, enabled=True,
                        read_only=False, created_at=now, updated_at=now)
        session.add(target)
    elif target.url != url:
        target.url, target.updated_at = url, now
    session.flush()
    return target


def add_target(session: Session, *, project: str, name: str, url: str, now: datetime,
               enabled: bool = True, read_only: bool = False) -> Target:
    """Create a target; a duplicate name in the project is a conflict."""
    validate_name("target", name)
    validate_url(url)
    proj = ensure_project(session, project, now)
    target = Target(project_id=proj.id, name=name, url=url, enabled=enabled,
                    read_only=read_only, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(target)
            session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise TargetError("conflict", f"target {name!r} already exists in project "
                                      f"{project!r}") from None
    return target


def list_targets(session: Session, project_id: int | None = None) -> list[tuple[Target, str]]:
    """Return (target, project name) pairs, optionally within one project."""
    query = select(Target, Project.name).join(Project).order_by(Project.name, Target.name)
    if project_id is not None:
        query = query.where(Target.project_id == project_id)
    return [(t, p) for t, p in session.execute(query).all()]


def find_target(session: Session, ident: str | int, project: str | None = None) -> Target:
    """Find a target by id, or by name (within `project`, default `default`)."""
    if isinstance(ident, int) or str(ident).isdigit():
        target = session.get(Target, int(ident))
    else:
        proj = session.scalar(select(Project).where(Project.name == (project or DEFAULT_PROJECT)))
        target = proj and session.scalar(select(Target).where(
            Target.project_id == proj.id, Target.name == ident))
    if target is None:
        raise TargetError("not_found", f"no target {ident!r}")
    return target


def update_target(session: Session, target: Target, changes: dict[str, Any],
                  now: datetime) -> Target:
    """Apply a partial update of name, url, enabled or read_only."""
    if "name" in changes:
        target.name = validate_name("target", changes["name"])
    if "url" in changes:
        target.url = validate_url(changes["url"])
    for flag in ("enabled", "read_only"):
        if flag in changes:
            target.__setattr__(flag, bool(changes[flag]))
    target.updated_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise TargetError("conflict", f"target name {target.name!r} is taken") from None
    return target


def public_target(target: Target, project: str) -> dict[str, Any]:
    """Describe a target for people: the password never leaves."""
    return {
        "id": target.id,
        "project": project,
        "project_id": target.project_id,
        "name": target.name,
        "url": mask_url(target.url),
        "enabled": target.enabled,
        "read_only": target.read_only,
        "created_at": target.created_at.isoformat(),
        "updated_at": target.updated_at.isoformat(),
    }
