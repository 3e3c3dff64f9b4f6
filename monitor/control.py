"""The persisted switch that pauses and resumes monitoring without touching processes."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from monitor.db import ControlFlag, insert_for

MONITORING = "monitoring"


def monitoring_enabled(session: Session) -> bool:
    """Tell whether dispatch tasks should run; monitoring is on until someone stops it."""
    flag = session.get(ControlFlag, MONITORING)
    return True if flag is None else flag.enabled


def set_monitoring(session: Session, enabled: bool, actor: str, now: datetime,
                   reason: str | None = None) -> ControlFlag:
    """Turn monitoring on or off, recording who and when."""
    values = {"name": MONITORING, "enabled": enabled, "changed_by": actor[:200],
              "changed_at": now, "reason": reason}
    stmt = insert_for(session, ControlFlag).values(values).on_conflict_do_update(
        index_elements=["name"], set_={k: v for k, v in values.items() if k != "name"})
    session.execute(stmt)
    session.expire_all()
    flag = session.get(ControlFlag, MONITORING)
    assert flag is not None
    return flag


def control_view(session: Session) -> dict[str, Any]:
    """Describe the switch for people."""
    flag = session.get(ControlFlag, MONITORING)
    if flag is None:
        return {"monitoring": "running", "enabled": True, "changed_by": None,
                "changed_at": None, "reason": None}
    return {"monitoring": "running" if flag.enabled else "stopped", "enabled": flag.enabled,
            "changed_by": flag.changed_by, "changed_at": flag.changed_at.isoformat(),
            "reason": flag.reason}
