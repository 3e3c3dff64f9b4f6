"""The alert lifecycle as pure functions of stored facts and `now`.

pending -> active (after `for`) -> acknowledged (by a person, optional expiry) -> resolved.
A value inside the hysteresis band neither resolves an open alert nor raises a new one firing;
stale or missing data changes nothing (it is reported, not taken as "fine").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from monitor.alerts.rules import Condition


class AlertStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


PENDING, ACTIVE, ACKNOWLEDGED, RESOLVED = "pending", "active", "acknowledged", "resolved"
OPEN = (PENDING, ACTIVE, ACKNOWLEDGED)
STATUSES = (PENDING, ACTIVE, ACKNOWLEDGED, RESOLVED)
ACTIONS = ("acknowledge", "unacknowledge", "resolve", "silence")


class TransitionError(ValueError):
    """The action is impossible from the alert's status (HTTP 409)."""


@dataclass(frozen=True)
class Snapshot:
    """The stored facts of an open alert that the evaluator needs."""

    status: str
    started_at: datetime
    cleared_at: datetime | None = None
    ack_expires_at: datetime | None = None


@dataclass(frozen=True)
class Timing:
    condition: Condition
    for_seconds: float = 0.0
    keep_firing_seconds: float = 0.0


@dataclass
class Step:
    """What one evaluation does to a (rule, target) pair."""

    status: str | None  # the status afterwards; None when there is no alert
    events: list[str] = field(default_factory=list)
    evaluation: str = "firing"  # firing | band | clear | stale | no_data
    cleared_at: datetime | None = None
    create: bool = False


def evaluate(alert: Snapshot | None, value: float | None, stale: bool, timing: Timing,
             now: datetime) -> Step:
    """Decide the next state of an alert from the rule's current value."""
    if stale or value is None:
        kind = "stale" if stale else "no_data"
        if alert is None:
            return Step(None, evaluation=kind)
        return Step(alert.status, evaluation=kind, cleared_at=alert.cleared_at)
    fires, clears = timing.condition.fires(value), timing.condition.clears(value)
    evaluation = "firing" if fires else ("clear" if clears else "band")
    if alert is None:
        return _new(fires, timing, evaluation)
    if alert.status == PENDING:
        return _pending(alert, fires, clears, timing, now, evaluation)
    return _open(alert, clears, timing, now, evaluation)


def _new(fires: bool, timing: Timing, evaluation: str) -> Step:
    if not fires:
        return Step(None, evaluation=evaluation)
    if timing.for_seconds <= 0:
        return Step(ACTIVE, ["pending", "active"], evaluation, create=True)
    return Step(PENDING, ["pending"], evaluation, create=True)


def _pending(alert: Snapshot, fires: bool, clears: bool, timing: Timing, now: datetime,
             evaluation: str) -> Step:
    if fires and now - alert.started_at >= timedelta(seconds=timing.for_seconds):
        return Step(ACTIVE, ["active"], evaluation)
    if clears:
        return Step(RESOLVED, ["dropped"], evaluation)  # never fired: no notification
    return Step(PENDING, [], evaluation)


def _open(alert: Snapshot, clears: bool, timing: Timing, now: datetime,
          evaluation: str) -> Step:
    if clears:
        cleared_at = alert.cleared_at or now
        events = [] if alert.cleared_at else ["cleared"]
        if now - cleared_at >= timedelta(seconds=timing.keep_firing_seconds):
            return Step(RESOLVED, events + ["resolved"], evaluation, cleared_at)
        return Step(alert.status, events, evaluation, cleared_at)
    events = ["firing_again"] if alert.cleared_at else []
    if alert.status == ACKNOWLEDGED and alert.ack_expires_at and now >= alert.ack_expires_at:
        return Step(ACTIVE, events + ["acknowledgement_expired"], evaluation)
    return Step(alert.status, events, evaluation)


def check_action(status: str, action: str) -> str:
    """Return the status after a person's action, or raise TransitionError."""
    if action == "acknowledge" and status in (ACTIVE, ACKNOWLEDGED):
        return ACKNOWLEDGED
    if action == "unacknowledge" and status == ACKNOWLEDGED:
        return ACTIVE
    if action == "resolve" and status in OPEN:
        return RESOLVED
    if action == "silence" and status in OPEN:
        return status
    raise TransitionError(f"cannot {action} an alert that is {status}")


# A duration as the API takes it: positive seconds, or a positive number with s, m, h or d.
DURATION_PATTERN = r"^[0-9]*[1-9][0-9]*(\.[0-9]+)?[smhd]?$"
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)] | Annotated[float, Field(gt=0)]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)?$")
MAX_DURATION = timedelta(days=3650)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(raw: object) -> timedelta:
    """Parse 600, "600", "10m", "2h" or "1d" into a positive timedelta."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("duration must be seconds or a string like 10m, 2h, 1d")
    match = _DURATION.match(str(raw).strip())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"duration {raw!r} must be positive: seconds or like 10m, 2h, 1d")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {raw!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)
