"""From a parsed request body to validated events and per-index errors (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidEventError
from shared.events import TouchpointEvent, ValidationRules, validate_event


class BatchTooLargeError(ValueError):
    pass


@dataclass
class IntakeResult:
    accepted: list[TouchpointEvent] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"index", "fields"}
    is_batch: bool = False


def take_events(
    body: Any, rules: ValidationRules, max_events: int, source: str = "api"
) -> IntakeResult:
    """Validates one event (`{...}`) or a batch (`{"events": [...]}`)."""
    if isinstance(body, dict) and "events" in body:
        events = body["events"]
        if set(body) != {"events"}:
            extra = sorted(set(body) - {"events"})
            raise InvalidEventError([{"field": extra[0], "message": "not allowed next to "
                                      "'events' in a batch", "type": "extra_forbidden"}])
        if not isinstance(events, list):
            raise InvalidEventError([{"field": "events", "message": "must be a list of events",
                                      "type": "list_type"}])
        if not events:
            raise InvalidEventError([{"field": "events", "message": "must not be empty",
                                      "type": "too_short"}])
        if len(events) > max_events:
            raise BatchTooLargeError(f"events: at most {max_events} events per request, "
                                     f"got {len(events)}")
        result = IntakeResult(is_batch=True)
        for index, raw in enumerate(events):
            try:
                result.accepted.append(validate_event(raw, rules, source, f"events[{index}]."))
            except InvalidEventError as exc:
                result.rejected.append({"index": index, "fields": exc.errors})
        return result
    return IntakeResult(accepted=[validate_event(body, rules, source)])
