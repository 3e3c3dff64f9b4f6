"""The circuit breaker per target: pure transitions, stored in the database by the caller."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

COOLDOWN_CAP_SECONDS = 300.0
# A half-open probe that never reported back frees the target after this long.
HALF_OPEN_TIMEOUT_SECONDS = 60.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    max_failures: int = 3
    base_delay: float = 1.0
    cap: float = COOLDOWN_CAP_SECONDS

    def cooldown(self, times_opened: int) -> float:
        """Exponential cooldown: base, 2 base, 4 base … up to the cap."""
        return min(self.cap, self.base_delay * 2 ** max(0, times_opened - 1))


@dataclass(frozen=True)
class BreakerState:
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0  # consecutive
    times_opened: int = 0  # consecutive openings, for the exponential cooldown
    next_probe_at: datetime | None = None
    last_error: str | None = None


def may_probe(current: BreakerState, now: datetime) -> tuple[bool, BreakerState]:
    """Decide whether a probe may touch the target now; an open breaker past cooldown half-opens."""
    if current.state == CircuitState.CLOSED:
        return True, current
    if current.next_probe_at is not None and now < current.next_probe_at:
        return False, current
    # Cooldown over (or a half-open probe went silent): this caller is the one probe.
    probing = replace(current, state=CircuitState.HALF_OPEN,
                      next_probe_at=now + timedelta(seconds=HALF_OPEN_TIMEOUT_SECONDS))
    return True, probing


def after_success(current: BreakerState) -> BreakerState:
    """Any success closes the breaker and forgets the failures."""
    return BreakerState()


def after_failure(current: BreakerState, now: datetime, error: str,
                  policy: BreakerPolicy) -> BreakerState:
    """Count a failure; open after max_failures, or again at once after a failed half-open probe."""
    failures = current.failures + 1
    if current.state == CircuitState.HALF_OPEN or failures >= policy.max_failures:
        times = current.times_opened + 1
        return BreakerState(CircuitState.OPEN, failures, times,
                            now + timedelta(seconds=policy.cooldown(times)), error)
    return replace(current, failures=failures, last_error=error)
