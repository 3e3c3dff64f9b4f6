"""A clock the test moves by hand, injected wherever the code takes `clock`."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class ManualClock:
    """Frozen until `advance` moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
