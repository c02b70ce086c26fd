"""How events travel on Kafka: the record layout of `touchpoints.v1` and its dead-letter topic.

Records use the CloudEvents 1.0 Kafka binding in binary mode: the event JSON is the value and
the CloudEvents attributes are `ce_*` headers. The key is the event's identity (customer id,
else anonymous id), so one customer's events stay ordered in one partition.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from shared.events import TouchpointEvent

EVENT_TYPE = "io.touchpoint.event.v1"
DEAD_LETTER_TYPE = "io.touchpoint.dead_letter.v1"
REQUEST_ID_HEADER = "request_id"

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    headers: Headers


def event_record(
    event: TouchpointEvent, request_id: str | None = None,
    extra_headers: Sequence[tuple[str, bytes]] = (),
) -> Record:
    """The Kafka record carrying one validated event (extra headers: e.g. `traceparent`)."""
    headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event.event_id.encode()),
        ("ce_source", f"/touchpoint/{event.source}".encode()),
        ("ce_type", EVENT_TYPE.encode()),
        ("ce_time", event.occurred_at.isoformat().encode()),
        ("ce_subject", event.identity.encode()),
        ("content-type", b"application/json"),
        ("schema_version", str(event.schema_version).encode()),
    ]
    if request_id:
        headers.append((REQUEST_ID_HEADER, request_id.encode()))
    headers.extend(extra_headers)
    value = event.model_dump_json(exclude_none=True).encode()
    return Record(key=event.identity.encode(), value=value, headers=headers)


def decode_event(value: bytes) -> TouchpointEvent:
    """Parse a record value back into an event (shape only; the catalog was checked on entry)."""
    return TouchpointEvent.model_validate_json(value)


def header(headers: Headers | None, name: str) -> str | None:
    for key, raw in headers or ():
        if key == name:
            return raw.decode("utf-8", "replace") if raw is not None else None
    return None


def dead_letter_record(
    original: bytes,
    reason: str,
    source: str,
    now: datetime,
    errors: list[dict[str, str]] | None = None,
    key: bytes | None = None,
    request_id: str | None = None,
) -> Record:
    """A dead-letter record keeping the original bytes (base64), the reason and the source."""
    body = {
        "reason": reason,
        "source": source,
        "errors": errors or [],
        "dead_lettered_at": now.isoformat(),
        "original_base64": base64.b64encode(original).decode(),
    }
    with contextlib.suppress(UnicodeDecodeError):
        body["original"] = original.decode("utf-8")
    headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", DEAD_LETTER_TYPE.encode()),
        ("ce_source", f"/touchpoint/{source}".encode()),
        ("ce_time", now.isoformat().encode()),
        ("dlq_reason", reason.encode()[:1000]),
    ]
    if request_id:
        headers.append((REQUEST_ID_HEADER, request_id.encode()))
    return Record(key=key or b"", value=orjson.dumps(body), headers=headers)


def dead_letter_original(value: bytes) -> bytes:
    """The original bytes kept in a dead-letter record."""
    return base64.b64decode(orjson.loads(value)["original_base64"])
