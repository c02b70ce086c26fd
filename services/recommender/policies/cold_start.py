"""Cold-start policy: Beta posteriors per action and phase, Thompson sampling.

Before any reward model exists, each action's success rate in a phase is a Beta posterior:
the prior mean comes from the catalog (``prior_success_rate``) with a pseudo-count of
``prior_strength`` observations, updated with the logged outcomes of that (phase, action).

Thompson sampling draws one rate per action and picks the best ``value * rate - cost``. We
never draw: the probability that each action wins the draw is computed by one-dimensional
quadrature, P(a wins) = E_{t ~ Beta_a}[ prod_{b != a} P(S_b < S_a(t)) ], and the action is
sampled from those probabilities. The logged propensity is therefore exactly the selection
probability. A share ``exploration_floor`` of uniform exploration keeps every propensity at
least ``exploration_floor / K``, so a model can later be trained and evaluated off-policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
from scipy.special import betaincinv
from sklearn.base import BaseEstimator

from services.recommender.policies.featurizer import Context, _check_fitted


@lru_cache(maxsize=2048)
def _quantile_table(alpha: float, beta: float, n_points: int) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """Beta(alpha, beta) at the midpoint quantiles, and the same table with the support ends
    added (rate 0 at quantile 0, rate 1 at quantile 1) for interpolating the CDF."""
    u = (np.arange(n_points) + 0.5) / n_points
    rates = betaincinv(alpha, beta, u)
    return rates, np.concatenate(([0.0], rates, [1.0])), np.concatenate(([0.0], u, [1.0]))


def thompson_probabilities(
    alpha: np.ndarray,
    beta: np.ndarray,
    value: np.ndarray | None = None,
    cost: np.ndarray | None = None,
    n_points: int = 256,
) -> np.ndarray:
    """P(candidate a has the largest ``value_a * theta_a - cost_a``), theta_a ~ Beta(a_a, b_a).

    Candidates with ``value == 0`` are point masses at ``-cost``; ties between point masses
    go to the earlier candidate. Midpoint quadrature on the quantile scale of each Beta; the
    other candidates' CDFs are interpolated in their own (cached) quantile tables, so a new
    candidate set costs K interpolations instead of K^2 incomplete-beta evaluations.
    """
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    k = len(alpha)
    value = np.ones(k) if value is None else np.asarray(value, dtype=float)
    cost = np.zeros(k) if cost is None else np.asarray(cost, dtype=float)
    continuous = value > 0
    tables = [_quantile_table(float(alpha[a]), float(beta[a]), n_points) if continuous[a]
              else None for a in range(k)]
    blocks = [value[a] * tables[a][0] - cost[a] if continuous[a] else np.asarray([-cost[a]])
              for a in range(k)]
    sizes = np.asarray([len(b) for b in blocks])
    points = np.concatenate(blocks)
    owner = np.repeat(np.arange(k), sizes)
    inner = np.ones(len(points))
    for b in range(k):
        if continuous[b]:
            _, rates, quantiles = tables[b]
            below = np.interp((points + cost[b]) / value[b], rates, quantiles)
        else:
            other = -cost[b]
            below = ((other < points) | ((other == points) & (owner < b))).astype(float)
        below[owner == b] = 1.0
        inner *= below
    probs = np.bincount(owner, weights=inner, minlength=k) / sizes
    total = probs.sum()
    return probs / total if total > 0 else np.full(k, 1.0 / k)


class BetaPriorPolicy(BaseEstimator):
    """Thompson sampling over Beta posteriors per (phase, action), with exact propensities."""

    def __init__(
        self,
        prior_rates: Mapping[str, float] | None = None,
        prior_strength: float = 10.0,
        default_prior_rate: float = 0.05,
        exploration_floor: float = 0.1,
        group_key: str = "phase",
        n_points: int = 256,
    ):
        self.prior_rates = prior_rates
        self.prior_strength = prior_strength
        self.default_prior_rate = default_prior_rate
        self.exploration_floor = exploration_floor
        self.group_key = group_key
        self.n_points = n_points

    def fit(
        self,
        contexts: Sequence[Context] = (),
        actions: Sequence[str] = (),
        rewards: Sequence[float] = (),
    ) -> BetaPriorPolicy:
        """Count outcomes per (group, action); rewards are clipped to [0, 1] as successes."""
        # Nested plain dicts (group -> action -> count) so the model file stays plain data.
        successes: dict[str, dict[str, float]] = {}
        trials: dict[str, dict[str, float]] = {}
        for context, action, reward in zip(contexts, actions, rewards, strict=True):
            group = self._group(context)
            wins = successes.setdefault(group, {})
            wins[action] = wins.get(action, 0.0) + float(np.clip(reward, 0.0, 1.0))
            seen = trials.setdefault(group, {})
            seen[action] = seen.get(action, 0.0) + 1.0
        self.successes_ = successes
        self.trials_ = trials
        self.cache_: dict[str, np.ndarray] = {}
        return self

    def _group(self, context: Context) -> str:
        value = context.get(self.group_key)
        return "" if value is None else str(value)

    def posterior(self, context: Context, action_id: str) -> tuple[float, float]:
        _check_fitted(self, "trials_")
        rate = (self.prior_rates or {}).get(action_id, self.default_prior_rate)
        group = self._group(context)
        wins = self.successes_.get(group, {}).get(action_id, 0.0)
        losses = self.trials_.get(group, {}).get(action_id, 0.0) - wins
        return (self.prior_strength * rate + wins, self.prior_strength * (1 - rate) + losses)

    def probabilities(
        self,
        context: Context,
        candidates: Sequence[str],
        values: Sequence[float] | None = None,
        costs: Sequence[float] | None = None,
    ) -> np.ndarray:
        """Selection probability of each candidate (sums to one)."""
        _check_fitted(self, "trials_")
        key = repr((self._group(context), tuple(candidates),
                    None if values is None else tuple(values),
                    None if costs is None else tuple(costs)))
        cached = self.cache_.get(key)
        if cached is not None:
            return cached
        params = np.asarray([self.posterior(context, a) for a in candidates])
        ts = thompson_probabilities(
            params[:, 0],
            params[:, 1],
            None if values is None else np.asarray(values),
            None if costs is None else np.asarray(costs),
            self.n_points,
        )
        probs = (1 - self.exploration_floor) * ts + self.exploration_floor / len(candidates)
        if len(self.cache_) >= 4096:  # bounded: candidate sets vary per customer
            self.cache_.clear()
        self.cache_[key] = probs
        return probs

    def expected_rates(self, context: Context, candidates: Sequence[str]) -> np.ndarray:
        """Posterior mean success rate of each candidate."""
        params = np.asarray([self.posterior(context, a) for a in candidates])
        return params[:, 0] / params.sum(axis=1)

    def sample(
        self,
        context: Context,
        candidates: Sequence[str],
        k: int,
        rng: np.random.Generator,
        values: Sequence[float] | None = None,
        costs: Sequence[float] | None = None,
    ) -> list[tuple[int, float]]:
        """A slate of distinct candidates with the propensity of each slot.

        Slot j is drawn by Thompson sampling among the candidates not yet chosen; its
        propensity is conditional on the earlier slots (see ``exploration``).
        """
        remaining = list(range(len(candidates)))
        slate = []
        for _slot in range(min(k, len(candidates))):
            probs = self.probabilities(
                context,
                [candidates[i] for i in remaining],
                None if values is None else [values[i] for i in remaining],
                None if costs is None else [costs[i] for i in remaining],
            )
            pick = int(rng.choice(len(remaining), p=probs))
            slate.append((remaining[pick], float(probs[pick])))
            remaining.pop(pick)
        return slate

