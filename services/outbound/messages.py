"""What subscribers receive (pure). Every message reads
`{"type", "timestamp", "data"}` as the Standard Webhooks spec suggests.

The message id is derived from the event type and the decision id, so a decision redelivered by
Kafka (at-least-once) yields the same message id and the subscriber can drop the duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from shared.decisions import DecisionRecord

DECISION_CREATED = "decision.created"
EVENT_TYPES = (DECISION_CREATED,)


@dataclass(frozen=True)
class Message:
    id: str
    type: str
    body: bytes


def message_id(event_type: str, key: str) -> str:
    return "msg_" + hashlib.sha256(f"{event_type}:{key}".encode()).hexdigest()[:32]


def decision_message(decision: DecisionRecord) -> Message:
    data: dict[str, Any] = {
        "decision_id": decision.decision_id,
        "customer_id": decision.customer_id,
        "decided_at": decision.decided_at.isoformat(),
        "holdout": decision.holdout,
        "policy": decision.policy,
        "model_version": decision.model_version,
        "actions": [a.model_dump() for a in decision.actions],
        "context": decision.context,
    }
    body = {"type": DECISION_CREATED, "timestamp": decision.decided_at.isoformat(), "data": data}
    return Message(message_id(DECISION_CREATED, decision.decision_id), DECISION_CREATED,
                   orjson.dumps(body))


def wants(events: list[str], event_type: str) -> bool:
    return "*" in events or event_type in events
