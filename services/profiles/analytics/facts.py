"""What the analytics aggregates need from one event or one decision: flat, script-ready facts.

Pure: the catalog is an argument, nothing reads the clock. Events on the topic were validated
against the catalog on entry, so channel, phase and step are set; the catalog fills them in for
older records that lack them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.decisions import DecisionRecord
from shared.events import TouchpointEvent
from shared.touchpoints import TouchpointCatalog

# Signals whose event answers a recommendation it names in context.decision_id.
RESPONSE_SIGNALS = frozenset({"engagement", "conversion", "purchase", "feedback"})
# Events that are not touches of a journey: the conversion itself, its reversal, and messages
# that never reached the customer.
NOT_A_TOUCH = frozenset({"purchase", "refund", "delivery_failure"})
# Characters the aggregate field names use as separators.
_SEPARATORS = str.maketrans({"|": "_", ">": "_", ":": "_"})


class UnusableEventError(ValueError):
    """The event lacks what the aggregates need (e.g. a phase for an unknown touchpoint)."""


@dataclass(frozen=True, slots=True)
class EventFacts:
    event_id: str
    subject: str  # customer id, else anonymous id
    at_ms: int
    day: str  # UTC date of occurred_at
    touchpoint: str
    channel: str
    phase: str
    journey_step: str
    purchase: bool
    value: float
    rating: int | None
    decision_id: str
    responds: bool
    touch: bool


@dataclass(frozen=True, slots=True)
class DecisionFacts:
    decision_id: str
    subject: str
    at_ms: int
    day: str
    action: str  # the top-ranked action; "none" when nothing was eligible
    model_version: str
    holdout: bool


def utc_day(at: datetime) -> str:
    return at.astimezone(UTC).date().isoformat()


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def field_safe(text: str) -> str:
    return text.translate(_SEPARATORS)


def event_facts(event: TouchpointEvent, catalog: TouchpointCatalog) -> EventFacts:
    entry = catalog.get(event.touchpoint)
    signals = entry.signals if entry else frozenset()
    channel = event.channel or (entry.channel if entry else None)
    phase = event.phase or (entry.phase if entry else None)
    step = event.journey_step or (entry.journey_step if entry else None)
    if channel is None or phase is None or step is None:
        raise UnusableEventError(
            f"event {event.event_id}: touchpoint {event.touchpoint!r} is not in the catalog and "
            "the event does not name its channel, phase and journey_step"
        )
    purchase = "purchase" in signals
    return EventFacts(
        event_id=event.event_id,
        subject=event.identity,
        at_ms=epoch_ms(event.occurred_at),
        day=utc_day(event.occurred_at),
        touchpoint=field_safe(event.touchpoint),
        channel=field_safe(channel),
        phase=str(phase),
        journey_step=str(step),
        purchase=purchase,
        value=float(event.value or 0.0) if purchase else 0.0,
        rating=event.rating,
        decision_id=event.context.decision_id or "",
        responds=bool(signals & RESPONSE_SIGNALS),
        touch=not signals & NOT_A_TOUCH,
    )


def decision_facts(record: DecisionRecord) -> DecisionFacts:
    top = min(record.actions, key=lambda action: action.rank, default=None)
    return DecisionFacts(
        decision_id=record.decision_id,
        subject=record.customer_id,
        at_ms=epoch_ms(record.decided_at),
        day=utc_day(record.decided_at),
        action=field_safe(top.action_id) if top else "none",
        model_version=field_safe(record.model_version),
        holdout=record.holdout,
    )
