"""Attribution over path counts: the aggregate form of `attribution.py`.

The aggregates keep, per day, how many journeys followed each exact path of keys and how many
of them converted with how much revenue. Every model of `attribution.py` except time decay
depends on journeys only through these counts, so it can run over a date range without
reading any customer. Results equal `attribution.attribute_all` on the expanded journeys (a
test checks this); time decay needs touch times, so the aggregates credit it as purchases
happen and `time_decay_result` only wraps those sums.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from services.profiles.analytics.attribution import (
    MAX_SHAPLEY_CHANNELS,
    AttributionResult,
    CoalitionStats,
    Journey,
    MarkovChain,
    Touch,
    position_based_weights,
    removal_effects,
    shapley_values,
)

RULE_MODELS = ("first_touch", "last_touch", "linear", "position_based")


@dataclass(frozen=True, slots=True)
class PathCount:
    """`journeys` journeys followed `keys`; `conversions` of them converted with `revenue`."""

    keys: tuple[str, ...]
    journeys: int
    conversions: int = 0
    revenue: float = 0.0

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("path.keys must contain at least one key")
        if not 0 <= self.conversions <= self.journeys:
            raise ValueError("need 0 <= path.conversions <= path.journeys")
        if self.revenue < 0 or (self.revenue and not self.conversions):
            raise ValueError("path.revenue must be >= 0 and needs conversions")


def path_counts(journeys: Iterable[Journey]) -> list[PathCount]:
    """Journeys grouped by their exact key sequence (the inverse of `expand`, in tests)."""
    totals: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for journey in journeys:
        row = totals[journey.keys]
        row[0] += 1
        row[1] += int(journey.converted)
        row[2] += journey.value
    return [PathCount(k, int(n), int(c), float(r)) for k, (n, c, r) in sorted(totals.items())]


def _rule_weights(model: str, n: int) -> list[float]:
    if model == "first_touch":
        return [1.0] + [0.0] * (n - 1)
    if model == "last_touch":
        return [0.0] * (n - 1) + [1.0]
    if model == "linear":
        return [1.0 / n] * n
    return position_based_weights(n, 0.4, 0.4)


def _result(model: str, conversions, revenue, paths: Sequence[PathCount]) -> AttributionResult:
    return AttributionResult(
        model=model,
        conversions=dict(sorted(conversions.items())),
        revenue=dict(sorted(revenue.items())),
        total_conversions=sum(p.conversions for p in paths),
        total_revenue=float(sum(p.revenue for p in paths)),
    )


def rule_based(paths: Sequence[PathCount], model: str) -> AttributionResult:
    """First touch, last touch, linear or position based (40/20/40) over path counts."""
    if model not in RULE_MODELS:
        raise ValueError(f"model must be one of {', '.join(RULE_MODELS)}")
    conversions: dict[str, float] = defaultdict(float)
    revenue: dict[str, float] = defaultdict(float)
    for path in paths:
        if not path.conversions:
            continue
        weights = np.asarray(_rule_weights(model, len(path.keys)))
        shares = weights / weights.sum()
        for key, share in zip(path.keys, shares, strict=True):
            conversions[key] += float(share) * path.conversions
            revenue[key] += float(share) * path.revenue
    return _result(model, conversions, revenue, paths)


def fit_markov_chain_counts(paths: Sequence[PathCount]) -> MarkovChain:
    keys = tuple(sorted({key for path in paths for key in path.keys}))
    index = {key: i + 1 for i, key in enumerate(keys)}
    size = len(keys) + 1
    counts = np.zeros((size, size + 2))
    for path in paths:
        states = [0, *(index[key] for key in path.keys)]
        for source, target in itertools.pairwise(states):
            counts[source, target] += path.journeys
        counts[states[-1], size] += path.conversions
        counts[states[-1], size + 1] += path.journeys - path.conversions
    probabilities = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return MarkovChain(keys, probabilities[:, :size], probabilities[:, size])


def markov_chain(paths: Sequence[PathCount]) -> AttributionResult:
    effects = removal_effects(fit_markov_chain_counts(paths))
    total = sum(effects.values())
    shares = {key: (effect / total if total else 0.0) for key, effect in effects.items()}
    total_conversions = sum(p.conversions for p in paths)
    total_revenue = sum(p.revenue for p in paths)
    return _result(
        "markov_chain",
        {key: share * total_conversions for key, share in shares.items()},
        {key: share * total_revenue for key, share in shares.items()},
        paths,
    )


def coalition_stats_counts(paths: Iterable[PathCount]) -> dict[frozenset[str], CoalitionStats]:
    totals: dict[frozenset[str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for path in paths:
        row = totals[frozenset(path.keys)]
        row[0] += path.journeys
        row[1] += path.conversions
        row[2] += path.revenue
    return {s: CoalitionStats(int(n), int(c), float(r)) for s, (n, c, r) in totals.items()}


def shapley(paths: Sequence[PathCount]) -> AttributionResult:
    """Shapley shares per converting coalition, looking up only that coalition's subsets.

    The same game as `attribution.shapley_shares` (v(S) = conversion rate of journeys whose
    key set is exactly S); enumerating the 2^|T| subsets of each coalition T keeps the cost
    independent of how many other coalitions were seen.
    """
    stats = coalition_stats_counts(paths)
    conversions: dict[str, float] = defaultdict(float)
    revenue: dict[str, float] = defaultdict(float)
    for coalition, row in stats.items():
        if not row.conversions:
            continue
        players = sorted(coalition)
        if len(players) > MAX_SHAPLEY_CHANNELS:
            raise ValueError(f"a path touches more than {MAX_SHAPLEY_CHANNELS} keys")
        value = {}
        for mask in range(1, 1 << len(players)):
            subset = frozenset(p for j, p in enumerate(players) if mask >> j & 1)
            seen = stats.get(subset)
            if seen is not None:
                value[mask] = seen.conversion_rate
        phi = shapley_values(players, value)
        for key, amount in phi.items():
            share = amount / row.conversion_rate
            conversions[key] += share * row.conversions
            revenue[key] += share * row.revenue
    return _result("shapley", conversions, revenue, paths)


def time_decay_result(
    conversions: Mapping[str, float], revenue: Mapping[str, float], paths: Sequence[PathCount]
) -> AttributionResult:
    """Time-decay credit summed by the aggregates, with the totals of the same journeys."""
    return _result("time_decay", dict(conversions), dict(revenue), paths)


def attribute_paths(
    paths: Sequence[PathCount],
    time_decay_conversions: Mapping[str, float],
    time_decay_revenue: Mapping[str, float],
) -> dict[str, AttributionResult]:
    """Every model, in the order of `attribution.MODELS`."""
    return {
        "first_touch": rule_based(paths, "first_touch"),
        "last_touch": rule_based(paths, "last_touch"),
        "linear": rule_based(paths, "linear"),
        "time_decay": time_decay_result(time_decay_conversions, time_decay_revenue, paths),
        "position_based": rule_based(paths, "position_based"),
        "markov_chain": markov_chain(paths),
        "shapley": shapley(paths),
    }


def expand(paths: Iterable[PathCount], at: datetime) -> list[Journey]:
    """Journeys with the given path counts (touches one hour apart), for checks and tests."""
    journeys = []
    for path in paths:
        touches = tuple(Touch(k, at + timedelta(hours=i)) for i, k in enumerate(path.keys))
        for n in range(path.journeys):
            converted = n < path.conversions
            value = path.revenue / path.conversions if converted else 0.0
            journeys.append(Journey(touches, converted, value))
    return journeys
