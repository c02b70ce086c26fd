"""Reconciliation after a fault: every acknowledged event is in the profiles exactly once.

Pure: the caller gathers what each request was answered (`Outcome`) and what the profiles
hold (`ProfileCount`); `reconcile` compares them. Rules:

- an event answered 202 must be in its customer's profile exactly once;
- an event answered 503 (or whose request failed in transit) may be there or not: the broker
  can store a record whose acknowledgement timed out, and the client will retry it; once;
- a 5xx other than 503 with `Retry-After`, or a request that hung past the client timeout,
  is an error;
- nothing may be in a profile that was never sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

ACCEPTED = 202


@dataclass(frozen=True)
class Outcome:
    """What the client was told about one event."""

    event_id: str
    customer_id: str
    status: int | None  # None: no HTTP answer (connection refused, reset, client timeout)
    retry_after: str | None = None
    transport_error: str | None = None


@dataclass(frozen=True)
class ProfileCount:
    """What one customer's profile holds: its event counter and the event ids it can show."""

    customer_id: str
    events_counted: int
    event_ids: tuple[str, ...]


@dataclass
class ScenarioResult:
    scenario: str
    injected: str
    events_sent: int = 0
    acknowledged: int = 0
    in_profiles: int = 0
    duplicates: int = 0
    missing: int = 0
    landed_without_ack: int = 0
    refused_503: int = 0
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and self.missing == 0 and self.duplicates == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        return (f"[{self.scenario}] injected: {self.injected}\n"
                f"  reconciled: sent {self.events_sent}, acknowledged {self.acknowledged}, "
                f"in profiles {self.in_profiles}, missing {self.missing}, duplicates "
                f"{self.duplicates}, 503 {self.refused_503}, landed without ack "
                f"{self.landed_without_ack}, errors {len(self.errors)}"
                + "".join(f"\n    error: {e}" for e in self.errors[:10])
                + "".join(f"\n  {k}: {v}" for k, v in self.extra.items()))


def answer_errors(outcomes: Iterable[Outcome]) -> list[str]:
    """Answers no fault may produce: 5xx except 503 + Retry-After, hangs, other failures."""
    problems: Counter[str] = Counter()
    for o in outcomes:
        if o.status is None:
            problems[f"no answer ({o.transport_error})"] += 1
        elif o.status == 503 and not o.retry_after:
            problems["503 without Retry-After"] += 1
        elif o.status >= 500 and o.status != 503:
            problems[f"HTTP {o.status}"] += 1
        elif o.status not in (ACCEPTED, 503):
            problems[f"unexpected HTTP {o.status}"] += 1
    return [f"{what}: {count} request(s)" for what, count in sorted(problems.items())]


def reconcile(
    result: ScenarioResult, outcomes: Iterable[Outcome], profiles: Mapping[str, ProfileCount],
    tolerate_no_answer: bool = False,
) -> ScenarioResult:
    """Fills `result` from the answers and the profiles; returns it."""
    outcomes = list(outcomes)
    sent = {o.event_id: o for o in outcomes}
    acknowledged = {o.event_id for o in outcomes if o.status == ACCEPTED}
    seen: Counter[str] = Counter()
    duplicates = 0
    for profile in profiles.values():
        seen.update(profile.event_ids)
        distinct = len(set(profile.event_ids))
        # an event applied twice shows as a repeated timeline entry, a counter above the
        # number of distinct events, or both: count it once
        duplicates += max(len(profile.event_ids), profile.events_counted) - distinct
    never_sent = sorted(set(seen) - set(sent))
    result.events_sent = len(sent)
    result.acknowledged = len(acknowledged)
    result.in_profiles = sum(1 for e in acknowledged if seen[e] >= 1)
    result.missing = len(acknowledged) - result.in_profiles
    result.duplicates = duplicates
    result.landed_without_ack = sum(1 for e in set(seen) & set(sent) if e not in acknowledged)
    result.refused_503 = sum(1 for o in outcomes if o.status == 503)
    errors = answer_errors(o for o in outcomes if not (tolerate_no_answer and o.status is None))
    if never_sent:
        errors.append(f"{len(never_sent)} event(s) in profiles that were never sent: "
                      f"{never_sent[:5]}")
    wrong_customer = [e for p in profiles.values() for e in p.event_ids
                      if e in sent and sent[e].customer_id != p.customer_id]
    if wrong_customer:
        errors.append(f"{len(wrong_customer)} event(s) in another customer's profile")
    missing = sorted(e for e in acknowledged if seen[e] == 0)
    if missing:
        errors.append(f"acknowledged but missing: {missing[:10]}")
    result.errors.extend(errors)
    return result
