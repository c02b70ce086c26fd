"""What every webhook provider module shares: errors, the mapping result and header access."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.errors import TouchpointError

Headers = Mapping[str, str]
RawEvent = dict[str, Any]
ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@+\-]{1,128}$")


class SignatureError(TouchpointError):
    """The request is not provably from the provider: answered 401, nothing is produced."""


class UnmappableError(TouchpointError):
    """An authentic payload that cannot be read as a whole: dead-lettered, answered 2xx."""


@dataclass(frozen=True)
class Unmapped:
    """One authentic item that maps to no touchpoint; it goes to the dead-letter topic."""

    reason: str
    original: Any


@dataclass(frozen=True)
class Ignored:
    """An authentic item that is not a touchpoint by design (e.g. an order update that
    changes nothing we record). Counted and reported in the answer, never published."""

    reason: str


MappedItem = RawEvent | Unmapped | Ignored


@dataclass(frozen=True)
class MappingOptions:
    """Choices a deployment makes about identities (passed in, never read from settings)."""

    default_country_code: str = "84"


DEFAULT_OPTIONS = MappingOptions()


@dataclass(frozen=True)
class Provider:
    """A provider as the router sees it: pure functions plus how it is configured."""

    name: str
    verify: Callable[[Headers, bytes, str, Any, datetime], None]
    parse: Callable[[Headers, bytes], Any]
    to_events: Callable[[Any, MappingOptions], list[MappedItem]]
    secret_settings: tuple[str, ...]
    description: str = ""
    handshake: Callable[[Mapping[str, str], Any], str] | None = None
    api_key_scope: str | None = None  # set: authenticated by our API key, not a signature


def header(headers: Headers, name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts and Starlette headers."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, item in headers.items():
            if key.lower() == lowered:
                return item
    return value


def required_header(headers: Headers, name: str) -> str:
    value = header(headers, name)
    if not value:
        raise SignatureError(f"missing {name} header")
    return value


def same(expected: str | bytes, given: str | bytes) -> bool:
    """Constant-time comparison (bytes or ASCII text)."""
    a = expected.encode() if isinstance(expected, str) else expected
    b = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


def check_age(sent_at: datetime, now: datetime, tolerance_s: float, what: str) -> None:
    """Rejects a signed timestamp outside the tolerance window (replay protection)."""
    skew = (now - sent_at).total_seconds()
    if skew > tolerance_s:
        raise SignatureError(f"{what} is {skew:.0f} s old; the limit is {tolerance_s:.0f} s")
    if skew < -tolerance_s:
        raise SignatureError(f"{what} is {-skew:.0f} s in the future")


def from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def event_time(value: object, scale: float = 1.0) -> str | None:
    """An ISO time from epoch seconds (or milliseconds with scale=1000); None if unusable."""
    try:
        return from_unix(float(value) / scale).isoformat()  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def stable_event_id(provider: str, *parts: object) -> str:
    """A deterministic event id from the provider's own delivery/event id.

    Provider retries carry the same id, so the profile consumer's event_id dedupe counts them
    once. Ids that would not fit our identifier rules are hashed (still deterministic).
    """
    raw = ":".join(str(part) for part in parts)
    candidate = f"{provider}:{raw}"
    if ID_PATTERN.match(candidate):
        return candidate
    return f"{provider}:h-{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


def context_from(values: Mapping[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    """Picks context fields (decision_id, action_id, campaign) from provider metadata."""
    context = {}
    for source_key, target in keys.items():
        value = values.get(source_key) if isinstance(values, Mapping) else None
        if isinstance(value, str | int) and str(value):
            context[target] = str(value)[:200]
    return context


# Custom arguments / metadata a sender may attach, so outcomes join our decisions.
DECISION_KEYS = {"decision_id": "decision_id", "action_id": "action_id", "campaign": "campaign"}
