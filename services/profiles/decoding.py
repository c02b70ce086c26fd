"""Step 1 of the consumer: Kafka records into profile deltas, or dead letters. Pure.

A touchpoint record becomes one delta for its subject (the customer if known, else the
anonymous visitor) and, when it names both ids, a link request that merges the visitor's
history into the customer. A decision record becomes one contact delta. Anything that does
not parse becomes a `DeadLetter` with the reason; nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from services.profiles.fold import Delta, decision_delta, epoch_ms, event_delta
from shared import redis_keys as keys
from shared.decisions import DecisionRecord
from shared.events import field_errors
from shared.stream import decode_event
from shared.touchpoints import TouchpointCatalog


@dataclass(frozen=True)
class Link:
    anonymous_id: str
    customer_id: str
    at_ms: int


@dataclass(frozen=True)
class DeadLetter:
    value: bytes
    key: bytes | None
    reason: str
    errors: list[dict[str, str]]


@dataclass(frozen=True)
class Decoded:
    """What one record asks of the store; `delta` is None for a holdout decision."""

    delta: Delta | None
    link: Link | None = None


def decode_touchpoint(value: bytes | None, key: bytes | None,
                      catalog: TouchpointCatalog) -> Decoded | DeadLetter:
    if value is None:
        return DeadLetter(b"", key, "empty record value (tombstone) on the event topic", [])
    try:
        event = decode_event(value)
    except ValidationError as exc:
        return DeadLetter(value, key, "record value is not a valid touchpoint event",
                          field_errors(exc))
    if event.customer_id:
        subject = keys.customer_subject(event.customer_id)
    else:
        subject = keys.anonymous_subject(event.anonymous_id or "")
    link = None
    if event.customer_id and event.anonymous_id:
        link = Link(event.anonymous_id, event.customer_id, epoch_ms(event.occurred_at))
    return Decoded(event_delta(event, catalog, subject), link)


def decode_decision(value: bytes | None, key: bytes | None) -> Decoded | DeadLetter:
    if value is None:
        return DeadLetter(b"", key, "empty record value (tombstone) on the decision topic", [])
    try:
        decision = DecisionRecord.model_validate_json(value)
    except ValidationError as exc:
        return DeadLetter(value, key, "record value is not a valid decision record",
                          field_errors(exc))
    return Decoded(decision_delta(decision, keys.customer_subject(decision.customer_id)))
