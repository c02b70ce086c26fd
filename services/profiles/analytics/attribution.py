"""Attribution of conversions and revenue to the touches of customer journeys.

Every model returns an `AttributionResult` whose per-key credits sum to the number of
converted journeys and to their revenue. A key is whatever the caller groups touches by: a
channel ("zalo", "facebook") or a catalog touchpoint id ("flash_sale_notification").

Rule-based models (first/last touch, linear, time decay, position based) split each converted
journey's credit over its own touches. The data-driven models also learn from journeys that
did not convert: the first-order Markov chain removal effect and Shapley values over the
channels a journey touched. Formulas and the reasons behind each choice: docs/analytics.md.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

MODELS = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "position_based",
    "markov_chain",
    "shapley",
)


@dataclass(frozen=True, slots=True)
class Touch:
    """One contact of a customer with the business, grouped under `key`."""

    key: str
    at: datetime

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("touch.key must be a non-empty string")


@dataclass(frozen=True, slots=True)
class Journey:
    """The ordered touches of one customer up to a conversion, or up to now if none."""

    touches: tuple[Touch, ...]
    converted: bool
    value: float = 0.0
    converted_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.touches:
            raise ValueError("journey.touches must contain at least one touch")
        if any(b.at < a.at for a, b in zip(self.touches, self.touches[1:], strict=False)):
            raise ValueError("journey.touches must be ordered by time")
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError("journey.value must be a finite number >= 0")
        if not self.converted and (self.value or self.converted_at is not None):
            raise ValueError("journey.value and journey.converted_at need converted=True")
        if self.converted_at is not None and self.converted_at < self.touches[-1].at:
            raise ValueError("journey.converted_at is earlier than the last touch")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(touch.key for touch in self.touches)

    @property
    def conversion_time(self) -> datetime:
        """When the conversion happened; the last touch when the time was not recorded."""
        return self.converted_at or self.touches[-1].at


@dataclass(frozen=True, slots=True)
class AttributionResult:
    """Credit per key for one model; both mappings sum to the totals (up to float rounding)."""

    model: str
    conversions: Mapping[str, float]
    revenue: Mapping[str, float]
    total_conversions: int
    total_revenue: float


# ---------------------------------------------------------------------------------------------
# Rule-based models: a weight per touch, normalised to 1 per converted journey.

TouchWeights = Callable[[Journey], Sequence[float]]


def first_touch(journeys: Iterable[Journey]) -> AttributionResult:
    return _credit_by_touch_weights(journeys, "first_touch", _first_touch_weights)


def last_touch(journeys: Iterable[Journey]) -> AttributionResult:
    return _credit_by_touch_weights(journeys, "last_touch", _last_touch_weights)


def linear(journeys: Iterable[Journey]) -> AttributionResult:
    return _credit_by_touch_weights(journeys, "linear", lambda j: [1.0] * len(j.touches))


def time_decay(journeys: Iterable[Journey], half_life: timedelta) -> AttributionResult:
    """Weights 2^(-dt / half_life), dt = conversion time minus touch time."""
    if half_life <= timedelta(0):
        raise ValueError("half_life must be positive")
    return _credit_by_touch_weights(
        journeys, "time_decay", lambda journey: time_decay_weights(journey, half_life)
    )


def position_based(
    journeys: Iterable[Journey], first_share: float = 0.4, last_share: float = 0.4
) -> AttributionResult:
    """40/20/40 by default; see `position_based_weights` for one- and two-touch journeys."""
    if first_share < 0 or last_share < 0 or first_share + last_share > 1:
        raise ValueError("first_share and last_share must be >= 0 and sum to at most 1")
    return _credit_by_touch_weights(
        journeys,
        "position_based",
        lambda journey: position_based_weights(len(journey.touches), first_share, last_share),
    )


def time_decay_weights(journey: Journey, half_life: timedelta) -> list[float]:
    """2^(-dt / half_life) scaled so the latest touch weighs 1.

    The scale cancels when weights become shares, and it keeps old touches from all
    underflowing to zero when the half-life is short.
    """
    latest = journey.touches[-1].at
    return [2.0 ** (-((latest - touch.at) / half_life)) for touch in journey.touches]


def position_based_weights(n_touches: int, first_share: float, last_share: float) -> list[float]:
    """First and last touch get their shares, the middle touches split the rest equally.

    One touch takes everything. With two touches there is no middle, so the middle share is
    split between first and last in proportion to their shares (50/50 for 40/20/40).
    """
    if n_touches == 1:
        return [1.0]
    if n_touches == 2:
        ends = first_share + last_share
        if ends == 0:
            return [0.5, 0.5]
        return [first_share / ends, last_share / ends]
    middle = (1.0 - first_share - last_share) / (n_touches - 2)
    return [first_share, *([middle] * (n_touches - 2)), last_share]


def _first_touch_weights(journey: Journey) -> list[float]:
    return [1.0] + [0.0] * (len(journey.touches) - 1)


def _last_touch_weights(journey: Journey) -> list[float]:
    return [0.0] * (len(journey.touches) - 1) + [1.0]


def _credit_by_touch_weights(
    journeys: Iterable[Journey], model: str, weights_of: TouchWeights
) -> AttributionResult:
    conversions: dict[str, float] = defaultdict(float)
    revenue: dict[str, float] = defaultdict(float)
    converted = [journey for journey in journeys if journey.converted]
    for journey in converted:
        weights = np.asarray(weights_of(journey), dtype=float)
        shares = weights / weights.sum()
        for key, share in zip(journey.keys, shares, strict=True):
            conversions[key] += float(share)
            revenue[key] += float(share) * journey.value
    return _result(model, conversions, revenue, converted)


def _result(
    model: str,
    conversions: Mapping[str, float],
    revenue: Mapping[str, float],
    converted: Sequence[Journey],
) -> AttributionResult:
    return AttributionResult(
        model=model,
        conversions=dict(sorted(conversions.items())),
        revenue=dict(sorted(revenue.items())),
        total_conversions=len(converted),
        total_revenue=float(sum(journey.value for journey in converted)),
    )


# ---------------------------------------------------------------------------------------------
# First-order Markov chain: states start, one per key, conversion, null (absorbing).


@dataclass(frozen=True, slots=True)
class MarkovChain:
    """Transition probabilities between transient states (row 0 is `start`)."""

    keys: tuple[str, ...]
    transient: np.ndarray  # (1 + k) x (1 + k): start and keys -> start and keys
    to_conversion: np.ndarray  # (1 + k): probability of stepping straight into conversion


def fit_markov_chain(journeys: Iterable[Journey]) -> MarkovChain:
    """Count start -> touch -> ... -> conversion|null transitions; each journey is one path."""
    journeys = list(journeys)
    keys = tuple(sorted({key for journey in journeys for key in journey.keys}))
    index = {key: i + 1 for i, key in enumerate(keys)}
    size = len(keys) + 1
    counts = np.zeros((size, size + 2))  # last two columns: conversion, null
    for journey in journeys:
        states = [0, *(index[key] for key in journey.keys)]
        for source, target in itertools.pairwise(states):
            counts[source, target] += 1
        counts[states[-1], size if journey.converted else size + 1] += 1
    probabilities = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return MarkovChain(keys, probabilities[:, :size], probabilities[:, size])


def conversion_probability(chain: MarkovChain, removed: str | None = None) -> float:
    """Probability to be absorbed in conversion from start, solving (I - Q) x = r exactly.

    Removing a key drops its state: every transition into it now ends the journey (null).
    """
    keep = [0] + [i + 1 for i, key in enumerate(chain.keys) if key != removed]
    q = chain.transient[np.ix_(keep, keep)]
    r = chain.to_conversion[keep]
    if not r.any():
        return 0.0
    absorbed = np.linalg.solve(np.eye(len(keep)) - q, r)
    return float(absorbed[0])


def removal_effects(chain: MarkovChain) -> dict[str, float]:
    """1 - P(conversion without the key) / P(conversion); all 0 when nothing converts."""
    baseline = conversion_probability(chain)
    if baseline == 0:
        return dict.fromkeys(chain.keys, 0.0)
    return {key: 1.0 - conversion_probability(chain, key) / baseline for key in chain.keys}


def markov_chain(journeys: Iterable[Journey]) -> AttributionResult:
    """Totals split in proportion to each key's removal effect."""
    journeys = list(journeys)
    effects = removal_effects(fit_markov_chain(journeys))
    converted = [journey for journey in journeys if journey.converted]
    total = sum(effects.values())
    shares = {key: (effect / total if total else 0.0) for key, effect in effects.items()}
    total_revenue = sum(journey.value for journey in converted)
    conversions = {key: share * len(converted) for key, share in shares.items()}
    revenue = {key: share * total_revenue for key, share in shares.items()}
    return _result("markov_chain", conversions, revenue, converted)


# ---------------------------------------------------------------------------------------------
# Shapley values over the set of channels each journey touched.

MAX_SHAPLEY_CHANNELS = 15


@dataclass(frozen=True, slots=True)
class CoalitionStats:
    journeys: int
    conversions: int
    revenue: float

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.journeys


def coalition_stats(journeys: Iterable[Journey]) -> dict[frozenset[str], CoalitionStats]:
    """Journeys, conversions and revenue per exact set of keys touched (order ignored)."""
    totals: dict[frozenset[str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for journey in journeys:
        row = totals[frozenset(journey.keys)]
        row[0] += 1
        row[1] += int(journey.converted)
        row[2] += journey.value
    return {
        coalition: CoalitionStats(int(n), int(conv), float(rev))
        for coalition, (n, conv, rev) in totals.items()
    }


def shapley_values(players: Sequence[str], value: Mapping[int, float]) -> dict[str, float]:
    """Exact Shapley values by the subset formula.

    phi_i = sum over S not containing i of |S|! (n-|S|-1)! / n! * (v(S + i) - v(S)).
    `value` maps a bitmask over `players` (bit j = players[j]) to v; missing masks are 0.
    """
    n = len(players)
    if n > MAX_SHAPLEY_CHANNELS:
        raise ValueError(f"exact Shapley values need at most {MAX_SHAPLEY_CHANNELS} players")
    masks = np.arange(1 << n, dtype=np.int64)
    v = np.zeros(1 << n)
    for mask, amount in value.items():
        v[mask] = amount
    sizes = np.bitwise_count(masks)
    factorials = np.array([math.factorial(k) for k in range(n + 1)], dtype=float)
    result = {}
    for j, player in enumerate(players):
        bit = 1 << j
        without = masks[(masks & bit) == 0]
        s = sizes[without]
        weights = factorials[s] * factorials[n - s - 1] / factorials[n]
        result[player] = float(np.sum(weights * (v[without | bit] - v[without])))
    return result


def shapley_shares(
    coalition: frozenset[str], stats: Mapping[frozenset[str], CoalitionStats]
) -> dict[str, float]:
    """Shares of one coalition's conversions, from the game restricted to its subsets.

    v(S) = conversion rate of journeys whose set of keys is exactly S (0 if none was seen).
    By efficiency the values sum to v(coalition), so dividing by it gives shares summing to 1.
    """
    players = sorted(coalition)
    bit_of = {player: 1 << j for j, player in enumerate(players)}
    value = {
        sum(bit_of[key] for key in subset): row.conversion_rate
        for subset, row in stats.items()
        if subset <= coalition
    }
    phi = shapley_values(players, value)
    total = stats[coalition].conversion_rate
    return {player: amount / total for player, amount in phi.items()}


def shapley(journeys: Iterable[Journey]) -> AttributionResult:
    """Each converting coalition's conversions and revenue, split by its Shapley shares."""
    journeys = list(journeys)
    stats = coalition_stats(journeys)
    conversions: dict[str, float] = defaultdict(float)
    revenue: dict[str, float] = defaultdict(float)
    for coalition, row in stats.items():
        if row.conversions == 0:
            continue
        for key, share in shapley_shares(coalition, stats).items():
            conversions[key] += share * row.conversions
            revenue[key] += share * row.revenue
    return _result("shapley", conversions, revenue, [j for j in journeys if j.converted])


# ---------------------------------------------------------------------------------------------


def attribute_all(
    journeys: Iterable[Journey], half_life: timedelta = timedelta(days=7)
) -> dict[str, AttributionResult]:
    """Every model on the same journeys, keyed by model name (the order of `MODELS`)."""
    journeys = list(journeys)
    return {
        "first_touch": first_touch(journeys),
        "last_touch": last_touch(journeys),
        "linear": linear(journeys),
        "time_decay": time_decay(journeys, half_life),
        "position_based": position_based(journeys),
        "markov_chain": markov_chain(journeys),
        "shapley": shapley(journeys),
    }
