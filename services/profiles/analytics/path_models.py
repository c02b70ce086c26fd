"""Attribution from aggregates: the form of `attribution.py` that runs over a date range.

Every model of `attribution.py` depends on journeys only through sums that add up day by day:

- rule-based models and time decay: the credit per key of each converted journey (summed as
  journeys convert, so time decay sees the real touch times);
- the Markov chain: transition counts (start -> first key, key -> key) and how many journeys
  ended at each key with and without a conversion;
- Shapley: journeys, conversions and revenue per set of keys touched (a coalition).

`JourneyAggregates` holds these sums; the Redis aggregates keep exactly them per day, and
`attribute_aggregates` turns them into results. `aggregates_of` computes the same sums from
path counts, and tests check that the results equal `attribution.attribute_all` on the
expanded journeys.
"""

from __future__ import annotations

import functools
import itertools
import math
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


START = "^"  # the start state in transition counts (keys never contain it)


@dataclass(frozen=True)
class JourneyAggregates:
    journeys: int
    conversions: int
    revenue: float
    transitions: Mapping[tuple[str, str], float]  # (from, to); from = START for first touches
    ends: Mapping[str, tuple[float, float]]  # last key -> (converted, not converted) journeys
    coalitions: Mapping[frozenset[str], CoalitionStats]
    credits: Mapping[str, tuple[Mapping[str, float], Mapping[str, float]]]  # model -> credit


def markov_transitions(
    paths: Iterable[PathCount],
) -> tuple[dict[tuple[str, str], float], dict[str, tuple[float, float]]]:
    transitions: dict[tuple[str, str], float] = defaultdict(float)
    ends: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for path in paths:
        for source, target in itertools.pairwise((START, *path.keys)):
            transitions[(source, target)] += path.journeys
        ends[path.keys[-1]][0] += path.conversions
        ends[path.keys[-1]][1] += path.journeys - path.conversions
    return dict(transitions), {key: (c, n) for key, (c, n) in ends.items()}


def fit_markov_chain_from_transitions(
    transitions: Mapping[tuple[str, str], float], ends: Mapping[str, tuple[float, float]]
) -> MarkovChain:
    keys = tuple(sorted({k for pair in transitions for k in pair if k != START} | set(ends)))
    index = {key: i + 1 for i, key in enumerate(keys)}
    index[START] = 0
    size = len(keys) + 1
    counts = np.zeros((size, size + 2))  # last two columns: conversion, null
    for (source, target), n in transitions.items():
        counts[index[source], index[target]] += n
    for key, (converted, not_converted) in ends.items():
        counts[index[key], size] += converted
        counts[index[key], size + 1] += not_converted
    probabilities = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return MarkovChain(keys, probabilities[:, :size], probabilities[:, size])


def fit_markov_chain_counts(paths: Sequence[PathCount]) -> MarkovChain:
    return fit_markov_chain_from_transitions(*markov_transitions(paths))


def _markov(chain: MarkovChain, total_conversions: int, total_revenue: float) -> AttributionResult:
    effects = removal_effects(chain)
    total = sum(effects.values())
    shares = {key: (effect / total if total else 0.0) for key, effect in effects.items()}
    return AttributionResult(
        model="markov_chain",
        conversions={key: share * total_conversions for key, share in sorted(shares.items())},
        revenue={key: share * total_revenue for key, share in sorted(shares.items())},
        total_conversions=total_conversions,
        total_revenue=float(total_revenue),
    )


def markov_chain(paths: Sequence[PathCount]) -> AttributionResult:
    return _markov(
        fit_markov_chain_counts(paths),
        sum(p.conversions for p in paths),
        sum(p.revenue for p in paths),
    )


def coalition_stats_counts(paths: Iterable[PathCount]) -> dict[frozenset[str], CoalitionStats]:
    totals: dict[frozenset[str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for path in paths:
        row = totals[frozenset(path.keys)]
        row[0] += path.journeys
        row[1] += path.conversions
        row[2] += path.revenue
    return {s: CoalitionStats(int(n), int(c), float(r)) for s, (n, c, r) in totals.items()}


@functools.cache
def _subset_plan(n: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Membership matrix of the 2^n subsets of n players, and per player j: the subsets
    without j, the same subsets with j, and the weights |S|! (n - |S| - 1)! / n!."""
    masks = np.arange(1 << n, dtype=np.int64)
    members = ((masks[None, :] >> np.arange(n)[:, None]) & 1).astype(np.uint64)  # n x 2^n
    sizes = np.bitwise_count(masks)
    factorials = np.array([math.factorial(k) for k in range(n + 1)], dtype=float)
    plan = []
    for j in range(n):
        without = masks[(masks & (1 << j)) == 0]
        size = sizes[without]
        weights = factorials[size] * factorials[n - size - 1] / factorials[n]
        plan.append((without, without | (1 << j), weights))
    return members, plan


def _key_codes(keys: Sequence[str]) -> np.ndarray:
    """A 64-bit code per key; a coalition's code is the sum (mod 2^64) of its keys' codes.

    Up to 64 keys the codes are powers of two, so coalition codes are exact bitmasks. Beyond,
    they are seeded random 64-bit numbers: two different coalitions then share a code with
    probability about 2^-64 per pair, far below anything a report could show.
    """
    if len(keys) <= 64:
        return np.array([1 << i for i in range(len(keys))], dtype=np.uint64)
    return np.random.default_rng(20270101).integers(
        0, np.iinfo(np.uint64).max, size=len(keys), dtype=np.uint64, endpoint=True
    )


def shapley_credit(
    stats: Mapping[frozenset[str], CoalitionStats],
) -> tuple[dict[str, float], dict[str, float]]:
    """Each converting coalition's conversions and revenue split by its Shapley shares.

    The game of `attribution.shapley_shares`: v(S) = conversion rate of journeys whose key set
    is exactly S, 0 for sets never seen; the subset formula for every converting coalition T
    over the 2^|T| subsets of T. Coalitions of the same size are computed together with
    numpy: subset codes by one matrix product, their values by a sorted lookup of the seen
    coalitions, the Shapley values by one weighted difference per player.
    """
    keys = sorted({key for coalition in stats for key in coalition})
    index = {key: i for i, key in enumerate(keys)}
    codes = _key_codes(keys)
    seen = [(coalition, row) for coalition, row in stats.items() if row.conversions]
    code_of = dict(zip(keys, (int(c) for c in codes), strict=True))
    seen_codes = np.array(
        [sum(code_of[k] for k in c) & 0xFFFF_FFFF_FFFF_FFFF for c, _ in seen], dtype=np.uint64
    )
    order = np.argsort(seen_codes)
    seen_codes = seen_codes[order]
    seen_rates = np.array([row.conversion_rate for _, row in seen])[order]
    by_size: dict[int, list[tuple[frozenset[str], CoalitionStats]]] = defaultdict(list)
    for coalition, row in seen:
        if len(coalition) > MAX_SHAPLEY_CHANNELS:
            raise ValueError(f"a journey touches more than {MAX_SHAPLEY_CHANNELS} keys")
        by_size[len(coalition)].append((coalition, row))
    credit_conversions = np.zeros(len(keys))
    credit_revenue = np.zeros(len(keys))
    for n, group in by_size.items():
        players = np.array([[index[k] for k in sorted(c)] for c, _ in group])  # C x n
        members, plan = _subset_plan(n)
        subset_codes = codes[players] @ members  # C x 2^n, sums wrap modulo 2^64
        found = np.minimum(np.searchsorted(seen_codes, subset_codes), len(seen_codes) - 1)
        value = np.where(seen_codes[found] == subset_codes, seen_rates[found], 0.0)
        value[:, 0] = 0.0  # the empty coalition
        whole = value[:, -1]
        conversions = np.array([row.conversions for _, row in group], dtype=float)
        revenue = np.array([row.revenue for _, row in group])
        for j, (without, with_j, weights) in enumerate(plan):
            share = (value[:, with_j] - value[:, without]) @ weights / whole
            np.add.at(credit_conversions, players[:, j], share * conversions)
            np.add.at(credit_revenue, players[:, j], share * revenue)
    touched = {key for coalition, _ in seen for key in coalition}
    return (
        {k: float(credit_conversions[index[k]]) for k in keys if k in touched},
        {k: float(credit_revenue[index[k]]) for k in keys if k in touched},
    )


def shapley(paths: Sequence[PathCount]) -> AttributionResult:
    conversions, revenue = shapley_credit(coalition_stats_counts(paths))
    return _result("shapley", conversions, revenue, paths)


def aggregates_of(
    paths: Sequence[PathCount],
    time_decay: tuple[Mapping[str, float], Mapping[str, float]] = ({}, {}),
) -> JourneyAggregates:
    """The sums the Redis aggregates keep, from path counts (time decay given separately)."""
    transitions, ends = markov_transitions(paths)
    credits = {}
    for model in RULE_MODELS:
        result = rule_based(paths, model)
        credits[model] = (result.conversions, result.revenue)
    credits["time_decay"] = time_decay
    return JourneyAggregates(
        journeys=sum(p.journeys for p in paths),
        conversions=sum(p.conversions for p in paths),
        revenue=float(sum(p.revenue for p in paths)),
        transitions=transitions, ends=ends, coalitions=coalition_stats_counts(paths),
        credits=credits,
    )


def attribute_aggregates(aggregates: JourneyAggregates) -> dict[str, AttributionResult]:
    """Every model, in the order of `attribution.MODELS`."""
    totals = (aggregates.conversions, aggregates.revenue)

    def credited(model: str) -> AttributionResult:
        conversions, revenue = aggregates.credits.get(model, ({}, {}))
        return AttributionResult(
            model, dict(sorted(conversions.items())), dict(sorted(revenue.items())), *totals
        )

    chain = fit_markov_chain_from_transitions(aggregates.transitions, aggregates.ends)
    conversions, revenue = shapley_credit(aggregates.coalitions)
    return {
        "first_touch": credited("first_touch"),
        "last_touch": credited("last_touch"),
        "linear": credited("linear"),
        "time_decay": credited("time_decay"),
        "position_based": credited("position_based"),
        "markov_chain": _markov(chain, *totals),
        "shapley": AttributionResult(
            "shapley", dict(sorted(conversions.items())), dict(sorted(revenue.items())), *totals
        ),
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
