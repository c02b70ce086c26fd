"""Producing simulated streams and folding them cleanly, as the reference for consumer tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from services.profiles.fold import FoldedProfile, event_delta, fold_all
from services.simulator.journeys import JourneySimulator
from services.streaming.publisher import KafkaPublisher
from shared import redis_keys as keys
from shared.events import TouchpointEvent, ValidationRules, validate_event
from shared.settings import Settings
from shared.stream import event_record
from shared.touchpoints import TouchpointCatalog

START = datetime(2027, 1, 1, tzinfo=UTC)
END = datetime(2027, 3, 1, tzinfo=UTC)


def simulated_events(catalog: TouchpointCatalog, customers: int, seed: int = 7,
                     prefix: str = "c") -> list[TouchpointEvent]:
    """A live-ordered stream, validated the way ingestion validates it."""
    simulator = JourneySimulator(seed=seed, start=START, end=END, customer_prefix=prefix)
    rules = ValidationRules(catalog=catalog, now=END)
    return [validate_event(raw, rules, source="simulator") for raw in simulator.stream(customers)]


def produce(settings: Settings, events: Sequence[TouchpointEvent], copies: int = 1) -> None:
    publisher = KafkaPublisher(settings)
    try:
        records = [event_record(e) for e in events]
        for _ in range(copies):
            for start in range(0, len(records), 500):
                publisher.publish(settings.topic_touchpoints, records[start : start + 500])
    finally:
        publisher.close()


def clean_fold(events: Iterable[TouchpointEvent], catalog: TouchpointCatalog,
               timeline_capacity: int = 100) -> dict[str, FoldedProfile]:
    """Every profile as a single, in-order, exactly-once fold would leave it: anonymous
    events of a visitor who is ever identified belong to that customer."""
    events = list(events)
    linked = {e.anonymous_id: e.customer_id for e in events if e.customer_id and e.anonymous_id}
    deltas = []
    for e in events:
        delta = event_delta(e, catalog, keys.customer_subject(e.customer_id) if e.customer_id
                            else keys.anonymous_subject(e.anonymous_id or ""))
        if not e.customer_id and e.anonymous_id in linked:
            delta = replace(delta, subject=keys.customer_subject(linked[e.anonymous_id]))
        deltas.append(delta)
    profiles = fold_all(deltas, timeline_capacity=timeline_capacity)
    aliases: dict[str, list[str]] = {}
    for anon, customer in linked.items():
        aliases.setdefault(keys.customer_subject(customer), []).append(anon)
    for subject, anons in aliases.items():
        profiles[subject].state["al"] = sorted(anons, key=str.encode)
    return profiles
