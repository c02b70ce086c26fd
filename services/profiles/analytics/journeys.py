"""Where customers move between phases and journey steps, and where they stop.

Inputs are per-customer event histories in time order. Outputs are ready for charts: Sankey
nodes and links, funnel steps with drop-off, and the touchpoints last seen before customers
went quiet. `now` is always an argument.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

PHASES = ("pre_purchase", "purchase", "post_purchase")
FUNNEL_STAGES = ("pre_purchase", "purchase", "post_purchase", "loyal")
LOYALTY_STEP = "loyalty"

Facet = Literal["phase", "journey_step"]


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    at: datetime
    touchpoint: str
    phase: str
    journey_step: str
    is_purchase: bool = False

    def __post_init__(self) -> None:
        if not self.touchpoint:
            raise ValueError("event.touchpoint must be a non-empty string")
        if self.phase not in PHASES:
            raise ValueError(f"event.phase must be one of {', '.join(PHASES)}")
        if not self.journey_step:
            raise ValueError("event.journey_step must be a non-empty string")


@dataclass(frozen=True, slots=True)
class CustomerJourney:
    customer_id: str
    events: tuple[JourneyEvent, ...]

    def __post_init__(self) -> None:
        if not self.customer_id:
            raise ValueError("journey.customer_id must be a non-empty string")
        if not self.events:
            raise ValueError("journey.events must contain at least one event")
        if any(b.at < a.at for a, b in itertools.pairwise(self.events)):
            raise ValueError("journey.events must be ordered by time")

    @property
    def purchased(self) -> bool:
        return any(event.is_purchase for event in self.events)


# ---------------------------------------------------------------------------------------------
# Transitions and Sankey


@dataclass(frozen=True, slots=True)
class SankeyNode:
    id: str  # "<depth>:<value>", unique per column so the diagram has no cycles
    label: str
    depth: int


@dataclass(frozen=True, slots=True)
class SankeyLink:
    source: str
    target: str
    value: int


@dataclass(frozen=True, slots=True)
class Sankey:
    nodes: tuple[SankeyNode, ...]
    links: tuple[SankeyLink, ...]


def facet_path(journey: CustomerJourney, facet: Facet) -> list[str]:
    """The customer's sequence of phases (or steps), repeats of the same value collapsed."""
    values = (getattr(event, facet) for event in journey.events)
    return [value for value, _ in itertools.groupby(values)]


def transition_counts(
    journeys: Iterable[CustomerJourney], facet: Facet
) -> dict[tuple[str, str], int]:
    """How many times customers moved from one value to a different one."""
    counts: Counter[tuple[str, str]] = Counter()
    for journey in journeys:
        counts.update(itertools.pairwise(facet_path(journey, facet)))
    return dict(counts.most_common())


def sankey(journeys: Iterable[CustomerJourney], facet: Facet, max_depth: int = 6) -> Sankey:
    """Flows between the first `max_depth` values of each path, one column per position.

    Paths revisit values (research -> contact -> research), which a Sankey cannot draw as a
    cycle, so a node is a value at a position in the path.
    """
    if max_depth < 2:
        raise ValueError("max_depth must be at least 2")
    node_counts: Counter[tuple[int, str]] = Counter()
    link_counts: Counter[tuple[tuple[int, str], tuple[int, str]]] = Counter()
    for journey in journeys:
        path = list(enumerate(facet_path(journey, facet)[:max_depth]))
        node_counts.update(path)
        link_counts.update(itertools.pairwise(path))
    nodes = tuple(SankeyNode(_node_id(node), node[1], node[0]) for node in sorted(node_counts))
    links = tuple(
        SankeyLink(_node_id(source), _node_id(target), count)
        for (source, target), count in sorted(link_counts.items())
    )
    return Sankey(nodes, links)


def _node_id(node: tuple[int, str]) -> str:
    return f"{node[0]}:{node[1]}"


# ---------------------------------------------------------------------------------------------
# Funnel


@dataclass(frozen=True, slots=True)
class FunnelStep:
    stage: str
    customers: int
    dropped_off: int  # reached this stage but not the next one (0 for the last stage)
    drop_off_rate: float | None  # dropped_off / customers
    rate_from_previous: float | None  # customers / customers at the previous stage
    median_time_from_previous: timedelta | None


StagePredicate = Callable[[JourneyEvent, int], bool]  # event, purchases so far including it


def funnel(journeys: Iterable[CustomerJourney], loyal_min_purchases: int = 2) -> list[FunnelStep]:
    """pre_purchase -> purchase -> post_purchase -> loyal, each stage after the previous one.

    A customer enters at the first event, reaches purchase at the first purchase event,
    post_purchase at the first post-purchase event after it, and loyal at the first event
    after that which is in the loyalty step or makes `loyal_min_purchases` purchases.
    """
    if loyal_min_purchases < 1:
        raise ValueError("loyal_min_purchases must be at least 1")
    reached = [stage_times(journey, loyal_min_purchases) for journey in journeys]
    counts = [sum(1 for times in reached if len(times) > k) for k in range(len(FUNNEL_STAGES))]
    steps = []
    for k, stage in enumerate(FUNNEL_STAGES):
        customers = counts[k]
        dropped = customers - counts[k + 1] if k + 1 < len(counts) else 0
        waits = [times[k] - times[k - 1] for times in reached if len(times) > k] if k else []
        steps.append(
            FunnelStep(
                stage=stage,
                customers=customers,
                dropped_off=dropped,
                drop_off_rate=dropped / customers if customers else None,
                rate_from_previous=customers / counts[k - 1] if k and counts[k - 1] else None,
                median_time_from_previous=statistics.median(waits) if waits else None,
            )
        )
    return steps


def stage_times(journey: CustomerJourney, loyal_min_purchases: int = 2) -> list[datetime]:
    """When the customer reached each funnel stage, in order, as far as they got."""
    predicates: list[tuple[StagePredicate, bool]] = [  # (predicate, may share the event)
        (lambda event, purchases: event.is_purchase, True),
        (lambda event, purchases: event.phase == "post_purchase", False),
        (
            lambda event, purchases: (
                event.journey_step == LOYALTY_STEP or purchases >= loyal_min_purchases
            ),
            False,
        ),
    ]
    events = journey.events
    purchases_so_far = list(itertools.accumulate(int(e.is_purchase) for e in events))
    times, position = [events[0].at], 0
    for predicate, same_event in predicates:
        start = position if same_event else position + 1
        found = _first_index(events, purchases_so_far, start, predicate)
        if found is None:
            break
        times.append(events[found].at)
        position = found
    return times


def _first_index(
    events: Sequence[JourneyEvent], purchases: Sequence[int], start: int, predicate: StagePredicate
) -> int | None:
    for index in range(start, len(events)):
        if predicate(events[index], purchases[index]):
            return index
    return None


# ---------------------------------------------------------------------------------------------
# Drop-out


@dataclass(frozen=True, slots=True)
class DropOffTouchpoint:
    touchpoint: str
    customers: int  # dropped-out customers whose last event was at this touchpoint
    share: float  # of all dropped-out customers


def dropped_out(journey: CustomerJourney, now: datetime, inactivity: timedelta) -> bool:
    """Never purchased and no event during the `inactivity` window before `now`."""
    return not journey.purchased and journey.events[-1].at < now - inactivity


def last_touchpoints_before_drop_out(
    journeys: Iterable[CustomerJourney], now: datetime, inactivity: timedelta, limit: int = 10
) -> list[DropOffTouchpoint]:
    """Touchpoints most often seen last by customers who dropped out, most frequent first."""
    if inactivity <= timedelta(0):
        raise ValueError("inactivity must be positive")
    last_seen = Counter(
        journey.events[-1].touchpoint
        for journey in journeys
        if dropped_out(journey, now, inactivity)
    )
    total = sum(last_seen.values())
    ranked = sorted(last_seen.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [DropOffTouchpoint(touchpoint, n, n / total) for touchpoint, n in ranked]
