"""Event builders shared by the profile tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import TouchpointEvent

T0 = datetime(2027, 1, 20, 9, 0, tzinfo=UTC)


def event(
    event_id: str, touchpoint: str, minutes: float = 0, customer_id: str | None = "c-1",
    anonymous_id: str | None = None, **fields: Any,
) -> TouchpointEvent:
    return TouchpointEvent(
        event_id=event_id, customer_id=customer_id, anonymous_id=anonymous_id,
        occurred_at=T0 + timedelta(minutes=minutes), touchpoint=touchpoint, **fields,
    )
