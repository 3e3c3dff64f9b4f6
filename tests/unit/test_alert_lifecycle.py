"""The alert lifecycle with time frozen: for, hysteresis, keep-firing, acknowledgement expiry."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerts.lifecycle import (
    Snapshot,
    Timing,
    TransitionError,
    check_action,
    evaluate,
    parse_duration,
)
from monitor.alerts.rules import Condition, check_clear_threshold

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MEMORY = Timing(Condition(">", 90.0, 85.0), for_seconds=60)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_pending_at_59_seconds_and_active_at_60() -> None:
    first = evaluate(None, 95.0, False, MEMORY, at(0))
    assert first.create and first.status == "pending" and first.events == ["pending"]
    pending = Snapshot("pending", T0)
    assert evaluate(pending, 95.0, False, MEMORY, at(59)).status == "pending"
    assert evaluate(pending, 95.0, False, MEMORY, at(59.999)).status == "pending"
    became = evaluate(pending, 95.0, False, MEMORY, at(60))
    assert became.status == "active" and became.events == ["active"]


def test_for_zero_fires_at_once() -> None:
    step = evaluate(None, 1.0, False, Timing(Condition(">", 0, None)), T0)
    assert step.status == "active" and step.events == ["pending", "active"]


def test_a_pending_alert_that_clears_is_dropped() -> None:
    step = evaluate(Snapshot("pending", T0), 80.0, False, MEMORY, at(30))
    assert step.status == "resolved" and step.events == ["dropped"]


def test_oscillating_inside_the_band_neither_resolves_nor_refires() -> None:
    alert = Snapshot("active", T0)
    for i, value in enumerate([89.0, 91.0, 86.0, 90.5, 85.5, 89.9] * 5):
        step = evaluate(alert, value, False, MEMORY, at(60 + i * 15))
        assert step.status == "active" and step.events == [] and not step.create
    assert evaluate(alert, 85.0, False, MEMORY, at(1000)).status == "resolved"


def test_no_new_alert_from_inside_the_band() -> None:
    assert evaluate(None, 88.0, False, MEMORY, T0).status is None
    assert evaluate(None, 88.0, False, MEMORY, T0).evaluation == "band"


def test_acknowledgement_expires_back_to_active_if_still_firing() -> None:
    acked = Snapshot("acknowledged", T0, ack_expires_at=at(600))
    assert evaluate(acked, 95.0, False, MEMORY, at(599)).status == "acknowledged"
    step = evaluate(acked, 95.0, False, MEMORY, at(600))
    assert step.status == "active" and "acknowledgement_expired" in step.events
    # Inside the band counts as still firing.
    assert evaluate(acked, 87.0, False, MEMORY, at(600)).status == "active"


def test_acknowledged_alert_resolves_when_cleared() -> None:
    acked = Snapshot("acknowledged", T0, ack_expires_at=at(600))
    assert evaluate(acked, 50.0, False, MEMORY, at(100)).status == "resolved"


def test_keep_firing_holds_the_alert_after_it_clears() -> None:
    timing = Timing(Condition(">", 90.0, None), keep_firing_seconds=120)
    alert = Snapshot("active", T0)
    first = evaluate(alert, 50.0, False, timing, at(10))
    assert first.status == "active" and first.events == ["cleared"] and first.cleared_at == at(10)
    holding = Snapshot("active", T0, cleared_at=at(10))
    assert evaluate(holding, 50.0, False, timing, at(129)).status == "active"
    assert evaluate(holding, 50.0, False, timing, at(130)).status == "resolved"
    again = evaluate(holding, 95.0, False, timing, at(60))
    assert again.status == "active" and again.events == ["firing_again"]
    assert again.cleared_at is None


def test_stale_or_missing_data_changes_nothing() -> None:
    alert = Snapshot("active", T0)
    stale = evaluate(alert, None, True, MEMORY, at(500))
    assert stale.status == "active" and stale.evaluation == "stale" and stale.events == []
    assert evaluate(None, None, False, MEMORY, T0).evaluation == "no_data"


@pytest.mark.parametrize(("status", "action", "after"), [
    ("active", "acknowledge", "acknowledged"),
    ("acknowledged", "acknowledge", "acknowledged"),
    ("acknowledged", "unacknowledge", "active"),
    ("pending", "resolve", "resolved"),
    ("active", "silence", "active"),
])
def test_allowed_actions(status: str, action: str, after: str) -> None:
    assert check_action(status, action) == after


@pytest.mark.parametrize(("status", "action"), [
    ("resolved", "acknowledge"), ("resolved", "resolve"), ("active", "unacknowledge"),
    ("pending", "acknowledge"), ("resolved", "silence"),
])
def test_impossible_actions(status: str, action: str) -> None:
    with pytest.raises(TransitionError):
        check_action(status, action)


def test_durations() -> None:
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration(600) == timedelta(minutes=10)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    for bad in ("-5m", "0", "ten", True, None, "5w"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_clear_threshold_must_be_on_the_safe_side() -> None:
    check_clear_threshold(">", 90, 85)
    check_clear_threshold("<", 0.8, 0.85)
    with pytest.raises(ValueError):
        check_clear_threshold(">", 90, 95)
    with pytest.raises(ValueError):
        check_clear_threshold("<", 0.8, 0.7)
