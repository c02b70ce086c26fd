"""Answers of the analytics API, built from the aggregates over a range of days.

Reads only per-day aggregates (never customer profiles), then hands them to the pure models:
`path_models` for attribution, `outcomes`/`lift` for recommendation results. Time comes in as
an argument (`today`, `now_s`) from the route, so every answer is reproducible in tests.

Filters: `from`/`to` (UTC dates, inclusive), `phase` and `channel` of the touchpoint,
`segment` = the customer's buying stage when the event happened (prospect: no purchase yet,
first_time_buyer: one, repeat_buyer: two or more). Which filters apply to which answer is
listed in docs/analytics.md.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from services.profiles.analytics import keys
from services.profiles.analytics.attribution import CoalitionStats
from services.profiles.analytics.costs import TouchpointCosts
from services.profiles.analytics.journeys import FUNNEL_STAGES
from services.profiles.analytics.outcomes import GroupSums, lift_from_sums
from services.profiles.analytics.path_models import (
    START,
    JourneyAggregates,
    attribute_aggregates,
)
from services.profiles.analytics.schemas import (
    ActionResult,
    Attribution,
    Credit,
    DropOffOut,
    Effectiveness,
    EffectivenessRow,
    EffectivenessTotals,
    Filters,
    FunnelStepOut,
    GroupOut,
    IntervalOut,
    Journeys,
    Label,
    LiveRate,
    ModelCredits,
    Recommendations,
    SankeyLinkOut,
    SankeyNodeOut,
)
from services.profiles.analytics.store import AnalyticsStore, days_between
from shared.touchpoints import TouchpointCatalog

MAX_RANGE_DAYS = 366
# Upper bounds of the funnel wait buckets in seconds (mirrors lua/common.lua WAIT_BOUNDS).
WAIT_BOUNDS = (3600, 21600, 86400, 259200, 604800, 1209600, 2592000, 7776000)


@dataclass(frozen=True)
class ReaderConfig:
    conversion_window_days: int = 7
    inactivity_days: int = 30
    half_life_days: float = 7.0
    # Attribution over a long range is the one costly answer (Shapley over many coalitions);
    # a dashboard asks for the same one again on every filter change, so it is kept briefly.
    attribution_cache_s: float = 30.0
    attribution_cache_entries: int = 32


class AnalyticsReader:
    def __init__(
        self, store: AnalyticsStore, catalog: TouchpointCatalog, costs: TouchpointCosts,
        config: ReaderConfig, clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.catalog = catalog
        self.costs = costs
        self.config = config
        self.clock = clock
        self._attribution_cache: OrderedDict[tuple, tuple[float, Attribution]] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def namespace(self) -> str:
        return self.store.namespace

    def _segments(self, filters: Filters) -> tuple[str, ...]:
        return (filters.segment,) if filters.segment else keys.SEGMENTS

    def _label(self, touchpoint: str) -> Label:
        entry = self.catalog.get(touchpoint)
        if entry is None:
            return Label(en=touchpoint, vi=touchpoint)
        return Label(en=entry.label.en, vi=entry.label.vi)

    # -- effectiveness ------------------------------------------------------------------

    def effectiveness(self, filters: Filters) -> Effectiveness:
        days = days_between(filters.date_from, filters.date_to)
        daily = self.store.per_day([keys.touchpoint_stats_key(self.namespace, d) for d in days])
        rows: dict[tuple[str, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        reach_keys: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for day, fields in zip(days, daily, strict=True):
            dims_seen = set()
            for field, value in fields.items():
                touchpoint, channel, phase, segment, metric = field.split("|")
                if not self._matches(filters, phase, channel, segment):
                    continue
                rows[(touchpoint, channel, phase)][metric] += float(value)
                dim = f"{touchpoint}|{channel}|{phase}|{segment}"
                if dim not in dims_seen:
                    dims_seen.add(dim)
                    reach_keys[(touchpoint, channel, phase)].append(
                        keys.reach_key(self.namespace, day, dim)
                    )
        row_ids = sorted(rows)
        reach = self.store.reach([reach_keys[r] for r in row_ids])
        everyone = [key for r in row_ids for key in reach_keys[r]]
        out = [self._row(r, rows[r], n) for r, n in zip(row_ids, reach, strict=True)]
        out.sort(key=lambda row: (-row.events, row.touchpoint))
        purchases = self.store.summed([keys.purchases_key(self.namespace, d) for d in days])
        segments = self._segments(filters)
        n = sum(purchases.get(f"{s}|n", 0.0) for s in segments)
        touches = sum(purchases.get(f"{s}|t", 0.0) for s in segments)
        totals = EffectivenessTotals(
            events=int(sum(row.events for row in out)),
            customers=self.store.reach([everyone])[0] if everyone else 0,
            purchases=int(n),
            revenue=sum(purchases.get(f"{s}|r", 0.0) for s in segments),
            touches_per_purchase=touches / n if n else None,
            cost=sum(row.cost or 0.0 for row in out),
        )
        return Effectiveness(
            filters=filters, conversion_window_days=self.config.conversion_window_days,
            rows=out, totals=totals,
        )

    @staticmethod
    def _matches(filters: Filters, phase: str, channel: str, segment: str) -> bool:
        return (
            (filters.phase is None or phase == filters.phase)
            and (filters.channel is None or channel == filters.channel)
            and (filters.segment is None or segment == filters.segment)
        )

    def _row(self, row_id: tuple[str, str, str], m: dict[str, float], reach: int):
        touchpoint, channel, phase = row_id
        events = int(m["e"])
        unit_cost = self.costs.cost_per_event(touchpoint, channel)
        cost = events * unit_cost if unit_cost is not None else None
        attributed = m["ar"]
        return EffectivenessRow(
            touchpoint=touchpoint, label=self._label(touchpoint), channel=channel, phase=phase,
            customers=reach, events=events, conversions=int(m["c"]),
            conversion_rate=m["c"] / events if events else None,
            purchases=int(m["p"]), revenue=m["r"], attributed_revenue=attributed,
            ratings=int(m["rn"]), average_rating=m["rs"] / m["rn"] if m["rn"] else None,
            cost=cost, roi=(attributed - cost) / cost if cost else None,
        )

    # -- attribution --------------------------------------------------------------------

    def attribution(self, filters: Filters, key: str = "channel") -> Attribution:
        """All models side by side; the same question within `attribution_cache_s` seconds
        gets the same answer without reading Redis again."""
        cache_key = (filters, key)
        now = self.clock()
        with self._cache_lock:
            hit = self._attribution_cache.get(cache_key)
            if hit is not None and hit[0] > now:
                return hit[1]
        answer = self._attribution(filters, key)
        with self._cache_lock:
            self._attribution_cache[cache_key] = (now + self.config.attribution_cache_s, answer)
            self._attribution_cache.move_to_end(cache_key)
            while len(self._attribution_cache) > self.config.attribution_cache_entries:
                self._attribution_cache.popitem(last=False)
        return answer

    def _attribution(self, filters: Filters, key: str) -> Attribution:
        view = "ch" if key == "channel" else "tp"
        buckets = keys.range_buckets(filters.date_from, filters.date_to)
        sums = self.store.attribution_sums(buckets, self._segments(filters), view)
        aggregates = journey_aggregates(sums, view)
        results = attribute_aggregates(aggregates)
        all_keys = sorted(
            {k for pair in aggregates.transitions for k in pair if k != START}
        )
        return Attribution(
            filters=filters, key=key, journeys=aggregates.journeys,
            converted_journeys=aggregates.conversions,
            half_life_days=self.config.half_life_days, keys=all_keys,
            models=[
                ModelCredits(
                    model=name, total_conversions=result.total_conversions,
                    total_revenue=result.total_revenue,
                    credits=[
                        Credit(key=k, conversions=result.conversions.get(k, 0.0),
                               revenue=result.revenue.get(k, 0.0))
                        for k in all_keys
                    ],
                )
                for name, result in results.items()
            ],
        )

    # -- journeys -----------------------------------------------------------------------

    def journeys(self, filters: Filters, today: date, facet: str = "phase") -> Journeys:
        days = days_between(filters.date_from, filters.date_to)
        flows = self.store.summed(
            [keys.flow_key(self.namespace, d, s) for d in days for s in self._segments(filters)]
        )
        nodes, links = [], []
        for field, value in sorted(flows.items()):
            f, kind, rest = field.split("|", 2)
            if f != facet or value <= 0:
                continue
            if kind == "n":
                depth, name = rest.split(":", 1)
                nodes.append(SankeyNodeOut(id=rest, name=name, depth=int(depth),
                                           customers=int(value)))
            else:
                source, target = rest.split(">")
                links.append(SankeyLinkOut(source=source, target=target, value=int(value)))
        nodes.sort(key=lambda n: (n.depth, -n.customers, n.name))
        return Journeys(
            filters=filters, facet=facet, sankey={"nodes": nodes, "links": links},
            funnel=self._funnel(days, filters.channel), drop_off=self._drop_off(filters, today),
            inactivity_days=self.config.inactivity_days,
        )

    def _funnel(self, days: list[date], channel: str | None) -> list[FunnelStepOut]:
        sums = self.store.summed([keys.funnel_key(self.namespace, d) for d in days])
        per_stage: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for field, value in sums.items():
            first_channel, stage, metric = field.split("|")
            if channel is None or first_channel == channel:
                per_stage[int(stage)][metric] += value
        counts = [int(per_stage[k]["n"]) for k in range(len(FUNNEL_STAGES))]
        steps = []
        for k, stage in enumerate(FUNNEL_STAGES):
            customers = counts[k]
            dropped = customers - counts[k + 1] if k + 1 < len(counts) else 0
            waits = [per_stage[k][f"w{b}"] for b in range(len(WAIT_BOUNDS) + 1)]
            steps.append(FunnelStepOut(
                stage=stage, customers=customers, dropped_off=dropped,
                drop_off_rate=dropped / customers if customers else None,
                rate_from_previous=customers / counts[k - 1] if k and counts[k - 1] else None,
                median_hours_from_previous=_bucket_median_hours(waits) if k else None,
                mean_hours_from_previous=(
                    per_stage[k]["ws"] / customers / 3600 if k and customers else None
                ),
            ))
        return steps

    def _drop_off(self, filters: Filters, today: date, limit: int = 10) -> list[DropOffOut]:
        last_quiet_day = today - timedelta(days=self.config.inactivity_days + 1)
        end = min(filters.date_to, last_quiet_day)
        if end < filters.date_from:
            return []
        sums = self.store.summed(
            [keys.drop_key(self.namespace, d) for d in days_between(filters.date_from, end)]
        )
        counted = []
        for field, value in sums.items():
            touchpoint, channel = field.split("|")
            if value > 0 and (filters.channel is None or channel == filters.channel):
                counted.append((touchpoint, channel, int(value)))
        total = sum(n for _, _, n in counted)
        counted.sort(key=lambda item: (-item[2], item[0]))
        return [
            DropOffOut(touchpoint=t, label=self._label(t), channel=c, customers=n, share=n / total)
            for t, c, n in counted[:limit]
        ]

    # -- recommendations ----------------------------------------------------------------

    def recommendations(self, filters: Filters) -> Recommendations:
        days = days_between(filters.date_from, filters.date_to)
        sums = self.store.summed([keys.recommendations_key(self.namespace, d) for d in days])
        groups: dict[tuple[str, str], dict[str, dict[str, float]]] = defaultdict(
            lambda: {"t": defaultdict(float), "h": defaultdict(float)}
        )
        for field, value in sums.items():
            action, version, group, metric = field.split("|")
            groups[(action, version)][group][metric] += value
        actions = []
        for (action, version), by_group in sorted(groups.items()):
            treated, holdout = (
                GroupSums(int(g["n"]), int(g["r"]), g["v"], g["v2"])
                for g in (by_group["t"], by_group["h"])
            )
            lift = lift_from_sums(action, version, treated, holdout)
            actions.append(ActionResult(
                action=action, model_version=version, decisions=lift.decisions,
                outcomes=lift.outcomes,
                treated=GroupOut(**_asdict(lift.treated)),
                holdout=GroupOut(**_asdict(lift.holdout)),
                response_lift=lift.response_lift,
                response_lift_interval=_interval(lift.response_lift_interval),
                relative_response_lift=lift.relative_response_lift,
                revenue_lift=lift.revenue_lift,
                revenue_lift_interval=_interval(lift.revenue_lift_interval),
            ))
        return Recommendations(
            filters=filters, conversion_window_days=self.config.conversion_window_days,
            actions=actions,
        )

    # -- live ---------------------------------------------------------------------------

    def live(self, now_s: int, seconds: int = 300) -> LiveRate:
        window = list(range(now_s - seconds + 1, now_s + 1))
        counts = self.store.rates(window)
        last_minute = sum(counts[-60:])
        watermark = self.store.watermark_ms()
        return LiveRate(
            seconds=seconds,
            series=[{"t": t, "events": n} for t, n in zip(window, counts, strict=True)],
            events_last_minute=last_minute, events_per_second=last_minute / 60,
            latest_event_time=(
                datetime.fromtimestamp(watermark / 1000, UTC).isoformat() if watermark else None
            ),
        )


def _asdict(group) -> dict:
    return {name: getattr(group, name) for name in GroupOut.model_fields}


def _interval(interval) -> IntervalOut | None:
    return IntervalOut(low=interval.low, high=interval.high) if interval else None


def _bucket_median_hours(bucket_counts: list[float]) -> float | None:
    """Median wait, interpolated inside the bucket holding it (the open bucket: its floor)."""
    total = sum(bucket_counts)
    if not total:
        return None
    half, seen = total / 2, 0.0
    for index, count in enumerate(bucket_counts):
        if count and seen + count >= half:
            low = WAIT_BOUNDS[index - 1] if index else 0
            if index == len(WAIT_BOUNDS):
                return low / 3600
            high = WAIT_BOUNDS[index]
            return (low + (high - low) * (half - seen) / count) / 3600
        seen += count
    return None


def journey_aggregates(sums: dict[str, float], view: str) -> JourneyAggregates:
    """The attribution sums of one view (`ch` or `tp`) from the summed `:att` hashes."""
    totals = {"jn": 0.0, "jc": 0.0, "jr": 0.0}
    transitions: dict[tuple[str, str], float] = {}
    ends: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    coalitions: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    credits: dict[str, tuple[dict[str, float], dict[str, float]]] = defaultdict(
        lambda: ({}, {})
    )
    prefix = f"{view}|"
    for field, value in sums.items():
        if not field.startswith(prefix):
            continue
        kind, _, rest = field[len(prefix):].partition("|")
        if kind in totals:
            totals[kind] = value
        elif kind == "t":
            source, target = rest.split(">")
            transitions[(source, target)] = value
        elif kind == "e":
            name, outcome = rest.rsplit("|", 1)
            ends[name][0 if outcome == "c" else 1] = value
        elif kind == "s":
            members, metric = rest.rsplit("|", 1)
            coalitions[members]["ncr".index(metric)] = value
        elif kind == "m":
            model, name, metric = rest.split("|")
            credits[model][0 if metric == "c" else 1][name] = value
    return JourneyAggregates(
        journeys=int(totals["jn"]), conversions=int(totals["jc"]), revenue=totals["jr"],
        transitions=transitions, ends={k: (c, n) for k, (c, n) in ends.items()},
        coalitions={
            frozenset(members.split(",")): CoalitionStats(int(n), int(c), max(r, 0.0))
            for members, (n, c, r) in coalitions.items() if n > 0
        },
        credits=dict(credits),
    )
