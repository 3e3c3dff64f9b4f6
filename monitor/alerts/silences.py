"""Silences: matchers on project, target, rule and severity between two times."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts.lifecycle import Duration
from monitor.db import Silence

MATCHER_KEYS = ("project", "target", "rule", "severity")


class SilenceInput(BaseModel):
    """A silence as the API accepts it: `ends_at` or `duration`, and at least one matcher."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as declared

    matchers: dict[Literal["project", "target", "rule", "severity"], str] = Field(min_length=1)
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1)
    starts_at: Annotated[datetime, Field(strict=False)] | None = None  # ISO 8601 text
    ends_at: Annotated[datetime, Field(strict=False)] | None = None
    duration: Duration | None = None

    @field_validator("matchers")
    @classmethod
    def _known_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MATCHER_KEYS))
        if unknown:
            raise ValueError(f"unknown matcher(s) {unknown}; allowed: {list(MATCHER_KEYS)}")
        if not value:
            raise ValueError("at least one matcher is needed (project, target, rule, severity)")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a timezone, e.g. 2026-11-28T12:00:00Z")
        return value

    @model_validator(mode="after")
    def _one_end(self) -> SilenceInput:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("give exactly one of ends_at or duration")
        return self


def matches(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    """Tell whether every matcher equals the alert's label of the same name."""
    return all(labels.get(key) == value for key, value in matchers.items())


def silence_state(silence: Silence, now: datetime) -> str:
    """Return pending, active or expired."""
    if now < silence.starts_at:
        return "pending"
    return "active" if now < silence.ends_at else "expired"


def active_silences(session: Session, now: datetime) -> list[Silence]:
    """Return the silences in force now."""
    return list(session.scalars(select(Silence).where(Silence.starts_at <= now,
                                                      Silence.ends_at > now)))


def silenced_by(silences: list[Silence], labels: dict[str, str]) -> Silence | None:
    """Return the first silence that matches these labels."""
    return next((s for s in silences if matches(s.matchers, labels)), None)


def create_silence(session: Session, data: SilenceInput, end: datetime, now: datetime) -> Silence:
    """Store a silence."""
    silence = Silence(matchers=data.matchers, starts_at=data.starts_at or now, ends_at=end,
                      created_by=data.created_by, comment=data.comment, created_at=now)
    session.add(silence)
    session.flush()
    return silence


def expire_silence(session: Session, silence: Silence, actor: str, now: datetime) -> Silence:
    """End a silence now; it stays in the history."""
    if silence.ends_at > now:
        silence.ends_at = max(now, silence.starts_at)
        silence.expired_by = actor
    return silence


def silence_view(silence: Silence, now: datetime) -> dict[str, Any]:
    """Describe a silence for the API."""
    return {"id": silence.id, "matchers": silence.matchers, "state": silence_state(silence, now),
            "starts_at": silence.starts_at.isoformat(), "ends_at": silence.ends_at.isoformat(),
            "created_by": silence.created_by, "comment": silence.comment,
            "created_at": silence.created_at.isoformat(), "expired_by": silence.expired_by}


def silence_end(data: SilenceInput, now: datetime, parse: Any) -> datetime:
    """Compute the end of a new silence from ends_at or duration."""
    start = data.starts_at or now
    try:
        end = data.ends_at if data.ends_at is not None else start + parse(data.duration)
    except OverflowError:
        raise ValueError("starts_at plus duration is past the year 9999") from None
    if end <= start:
        raise ValueError("ends_at must be after starts_at")
    return end


__all__ = ["MATCHER_KEYS", "SilenceInput", "active_silences", "create_silence",
           "expire_silence", "matches", "silence_end", "silence_state", "silence_view",
           "silenced_by"]
