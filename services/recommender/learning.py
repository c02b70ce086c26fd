"""Joining logged decisions with their outcomes into the log format the trainer reads.

One training row per decision outside the holdout, for the action in slot 1 (its propensity is
the marginal probability of being shown first, what off-policy learning needs)::

    {"context": decision features, "action": id, "propensity": p, "reward": 0 | 1,
     "actions": eligible candidate ids}

Reward (binary, so the reward model stays a calibrated probability):

- 1 when an outcome of the decision arrives within the attribution window: an event whose
  ``context.decision_id`` names it and whose touchpoint signals engagement, conversion or
  purchase (opened, clicked, replied, converted), or explicit feedback saying so;
- 1 when the customer buys within the window, credited to the customer's latest decision
  before the purchase (last touch), whichever action it was, ``no_action`` included;
- 0 otherwise, and 0 when the decision drew a negative answer (unsubscribe, spam report),
  even after a click: a sale that cost a subscriber is not a success.

Decisions whose window is still open are left out (their zeros are not final yet). Duplicate
decisions and events (redelivery) count once. Pure: decisions, events, the touchpoint catalog
and ``now`` are arguments; `read_topic` and `log_from_stream` are the Kafka adapter.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from services.recommender.logs import BanditLog, parse_decision
from shared.actions import ActionCatalog
from shared.decisions import DecisionRecord
from shared.events import TouchpointEvent
from shared.settings import Settings
from shared.touchpoints import TouchpointCatalog, load_catalog

log = logging.getLogger(__name__)

POSITIVE_OUTCOMES = frozenset({"opened", "clicked", "replied", "converted"})
NEGATIVE_OUTCOMES = frozenset({"unsubscribed"})
POSITIVE_SIGNALS = frozenset({"engagement", "conversion", "purchase"})
NEGATIVE_SIGNALS = frozenset({"negative"})
LEARNED_POLICIES = frozenset({"model", "cold_start", "fallback"})
OUTCOME_PROPERTY = "outcome"

# Explicit feedback -> the catalog touchpoint recorded for it, by the action's channel.
FEEDBACK_TOUCHPOINTS: dict[tuple[str, str], str] = {
    ("email", "opened"): "email.open",
    ("email", "clicked"): "email.click",
    ("email", "unsubscribed"): "email.unsubscribe",
    ("push", "opened"): "push.open",
    ("push", "clicked"): "push.open",
    ("zalo", "clicked"): "zalo.click",
    ("zalo", "replied"): "zalo.message",
    ("zalo", "unsubscribed"): "zalo.unfollow",
    ("messenger", "opened"): "messenger.read",
    ("messenger", "clicked"): "messenger.postback",
    ("messenger", "replied"): "messenger.message",
    ("chat", "clicked"): "chat.message",
    ("chat", "replied"): "chat.message",
    ("ads", "clicked"): "ads.click",
    ("hotline", "replied"): "hotline.call",
}
CONVERSION_TOUCHPOINT = "web.purchase"


def feedback_touchpoint(channel: str, outcome: str) -> str | None:
    if outcome == "converted":
        return CONVERSION_TOUCHPOINT
    return FEEDBACK_TOUCHPOINTS.get((channel, outcome))


def feedback_event_id(decision_id: str, action_id: str, outcome: str) -> str:
    """The same feedback sent twice is the same event (the profile and the join dedupe it)."""
    digest = hashlib.sha256(f"{decision_id}|{action_id}|{outcome}".encode()).hexdigest()
    return f"fb-{digest[:32]}"


def outcome_sign(event: TouchpointEvent, catalog: TouchpointCatalog) -> int:
    """+1 positive, -1 negative, 0 neutral (a delivery report, a read receipt...)."""
    explicit = event.properties.get(OUTCOME_PROPERTY)
    if explicit in NEGATIVE_OUTCOMES:
        return -1
    if explicit in POSITIVE_OUTCOMES:
        return 1
    entry = catalog.get(event.touchpoint)
    signals = set(entry.signals) if entry else set()
    if signals & NEGATIVE_SIGNALS:
        return -1
    if signals & POSITIVE_SIGNALS:
        return 1
    return 0


def is_purchase(event: TouchpointEvent, catalog: TouchpointCatalog) -> bool:
    entry = catalog.get(event.touchpoint)
    return entry is not None and "purchase" in entry.signals


@dataclass
class JoinReport:
    decisions: int = 0
    rows: int = 0
    positives: int = 0
    open_window: int = 0
    holdout_or_empty: int = 0
    outcomes_matched: int = 0
    purchases_credited: int = 0


T = TypeVar("T")


def _unique(items: Iterable[T], key: Callable[[T], str]) -> Iterator[T]:
    seen: set[str] = set()
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            yield item


def join(
    decisions: Iterable[DecisionRecord],
    events: Iterable[TouchpointEvent],
    catalog: TouchpointCatalog,
    now: datetime,
    window: timedelta = timedelta(days=7),
    report: JoinReport | None = None,
) -> list[dict[str, Any]]:
    """Training rows, in decision time order."""
    report = report if report is not None else JoinReport()
    kept: dict[str, DecisionRecord] = {}
    for decision in _unique(decisions, lambda d: d.decision_id):
        report.decisions += 1
        if decision.holdout or not decision.actions or decision.policy not in LEARNED_POLICIES:
            report.holdout_or_empty += 1
            continue
        if decision.decided_at + window > now:
            report.open_window += 1
            continue
        kept[decision.decision_id] = decision
    signs: dict[str, list[int]] = {d: [] for d in kept}
    # Per customer, decision times in order, for crediting purchases to the latest one.
    timeline: dict[str, list[tuple[datetime, str]]] = {}
    for decision in kept.values():
        timeline.setdefault(decision.customer_id, []).append(
            (decision.decided_at, decision.decision_id)
        )
    for entries in timeline.values():
        entries.sort()
    for event in _unique(events, lambda e: e.event_id):
        decision_id = event.context.decision_id
        target = kept.get(decision_id) if decision_id else None
        if target is not None:
            if target.decided_at <= event.occurred_at <= target.decided_at + window:
                sign = outcome_sign(event, catalog)
                if sign:
                    signs[target.decision_id].append(sign)
                    report.outcomes_matched += 1
            continue
        if decision_id is None and event.customer_id and is_purchase(event, catalog):
            entries = timeline.get(event.customer_id)
            if not entries:
                continue
            at = bisect.bisect_right(entries, (event.occurred_at, "\uffff")) - 1
            if at >= 0 and event.occurred_at - entries[at][0] <= window:
                signs[entries[at][1]].append(1)
                report.purchases_credited += 1
    rows = []
    for decision in sorted(kept.values(), key=lambda d: d.decided_at):
        first = min(decision.actions, key=lambda a: a.rank)
        outcome = signs[decision.decision_id]
        reward = 0.0 if -1 in outcome else 1.0 if 1 in outcome else 0.0
        candidates = list(decision.candidates) or [first.action_id]
        if first.action_id not in candidates:
            candidates.append(first.action_id)
        rows.append({
            "context": _scalars(decision.features),
            "action": first.action_id,
            "propensity": first.propensity,
            "reward": reward,
            "actions": candidates,
        })
        report.rows += 1
        report.positives += int(reward > 0)
    return rows


def _scalars(features: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in features.items() if v is None or isinstance(v, str | int | float)}


# --- reading both topics from Kafka -------------------------------------------------------------


def read_topic(
    consumer_options: dict[str, Any],
    topic: str,
    decode: Callable[[bytes], T],
    on_progress: Callable[[int], None] = lambda n: None,
    poll_timeout_ms: int = 500,
) -> tuple[list[T], int]:
    """Every record of `topic` from the beginning up to the end offsets seen at the start.

    No consumer group, no commit: reading for training never moves anyone's position.
    Returns (decoded values, number of records that could not be decoded).
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **consumer_options, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return [], 0
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = {tp: off for tp, off in consumer.end_offsets(assigned).items() if off > 0}
        out: list[T] = []
        bad = 0
        while end:
            batch = consumer.poll(timeout_ms=poll_timeout_ms)
            for tp, records in batch.items():
                for record in records:
                    if tp in end and record.offset < end[tp]:
                        try:
                            out.append(decode(record.value))
                        except ValueError as exc:
                            bad += 1
                            log.warning("%s[%s]@%s unreadable: %s", topic, tp.partition,
                                        record.offset, exc)
                on_progress(len(out))
            for tp in list(end):
                if consumer.position(tp) >= end[tp]:
                    del end[tp]
        return out, bad
    finally:
        consumer.close()


@dataclass
class StreamLog:
    rows: list[dict[str, Any]]
    report: JoinReport
    unreadable: int


def log_from_stream(
    settings: Settings,
    now: datetime,
    on_progress: Callable[[str, int], None] = lambda topic, n: None,
) -> StreamLog:
    """Both topics from the beginning (no group, no commit), joined into training rows."""
    from services.streaming.publisher import kafka_client_options

    options = kafka_client_options(settings)
    decisions, bad_decisions = read_topic(
        options, settings.topic_decisions, DecisionRecord.model_validate_json,
        lambda n: on_progress(settings.topic_decisions, n),
    )
    events, bad_events = read_topic(
        options, settings.topic_touchpoints, TouchpointEvent.model_validate_json,
        lambda n: on_progress(settings.topic_touchpoints, n),
    )
    report = JoinReport()
    rows = join(decisions, events, load_catalog(settings.touchpoint_catalog_file), now,
                timedelta(days=settings.recommender_attribution_days), report)
    return StreamLog(rows, report, bad_decisions + bad_events)


def bandit_log(rows: Sequence[dict[str, Any]], catalog: ActionCatalog) -> BanditLog:
    """Training rows as the trainer's log, with the catalog's action features."""
    decisions = [parse_decision(row, lineno) for lineno, row in enumerate(rows, start=1)]
    return BanditLog.from_decisions(decisions, catalog.feature_table())
