"""Scorers: the promoted model or the cold-start prior, turned into fast per-request scoring.

A scorer answers two questions for one context and a list of eligible candidates: the
probability of a positive outcome of each candidate (``p``), and the probability with which
each candidate is selected for each slot of the answer (exact, logged as propensities).
Arbitration is ``lever * p * value - cost`` per action.

``ModelScorer`` compiles a fitted reward model once, when it is loaded: for every catalog
action it keeps ``base_a`` and the row ``M_a`` so that a candidate's logit is
``base_a + x.w + M_a.x`` with ``x`` the context vector. A request costs one featurisation
and one small matrix-vector product; no sklearn call, no per-request allocation of the
interaction design. ``PriorScorer`` ranks by Beta posteriors with exact Thompson selection
probabilities (cached per eligible set: the quadrature is the expensive part).

Pure: no I/O, no clock; randomness comes from the caller's generator.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.special import expit

from services.recommender.policies.cold_start import BetaPriorPolicy, thompson_probabilities
from services.recommender.policies.exploration import Strategy, sample_slate
from shared.actions import ActionCatalog

ActionFeatures = Mapping[str, Mapping[str, float]]
CONSTANT_POLICY_FEATURE = "(same for everyone)"
LINEAR_BLOCKS = ("intercept_", "w_context_", "w_id_", "w_action_", "W_id_context_",
                 "W_feature_context_", "context_featurizer_", "action_featurizer_")


@dataclass(frozen=True)
class Slot:
    index: int  # into the candidate list
    propensity: float
    explored: bool  # not the candidate the greedy policy would have put here


@dataclass(frozen=True)
class Scored:
    p: np.ndarray  # probability of a positive outcome per candidate
    score: np.ndarray  # lever * p * value - cost per candidate
    slate: list[Slot]


class Scorer(Protocol):
    version: str
    policy: str

    def decide(
        self,
        context: Mapping[str, Any],
        candidates: Sequence[str],
        values: np.ndarray,
        costs: np.ndarray,
        k: int,
        rng: np.random.Generator,
        candidate_features: ActionFeatures | None = None,
    ) -> Scored: ...

    def top_features(
        self, context: Mapping[str, Any], action_id: str, n: int = 3
    ) -> list[tuple[str, float]]: ...


def plackett_luce_slate(
    probs: np.ndarray, k: int, rng: np.random.Generator
) -> list[tuple[int, float]]:
    """Slot 1 drawn from ``probs``; slot j from ``probs`` renormalised over the rest.

    The propensity of slot j is its conditional probability given slots 1..j-1.
    """
    weights = np.asarray(probs, dtype=float).copy()
    remaining = np.ones(len(weights), dtype=bool)
    slate = []
    for _slot in range(min(k, len(weights))):
        cumulative = np.cumsum(weights)
        if cumulative[-1] <= 0:  # only zero-probability candidates left: uniform among them
            weights = remaining.astype(float)
            cumulative = np.cumsum(weights)
        total = float(cumulative[-1])
        # Inverse-CDF draw from one uniform number in [0, total): the law of rng.choice(p=...);
        # `side="right"` never lands on a zero-weight candidate.
        pick = int(np.searchsorted(cumulative, rng.random() * total, side="right"))
        slate.append((pick, float(weights[pick] / total)))
        weights[pick] = 0.0
        remaining[pick] = False
    return slate


def _greedy_order(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def _slots(picks: list[tuple[int, float]], scores: np.ndarray) -> list[Slot]:
    order = _greedy_order(scores)
    return [
        Slot(index, propensity, explored=index != order[position])
        for position, (index, propensity) in enumerate(picks)
    ]


class PriorScorer:
    """Cold start: Beta posteriors per (phase, action), exact Thompson selection."""

    policy = "cold_start"

    def __init__(
        self,
        prior: BetaPriorPolicy,
        version: str = "prior",
        cache_size: int = 4096,
    ):
        self.prior = prior
        self.version = version
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def from_catalog(
        cls, catalog: ActionCatalog, exploration_floor: float, strength: float = 10.0
    ) -> PriorScorer:
        prior = BetaPriorPolicy(
            prior_rates={a.id: a.prior_success_rate for a in catalog.values()},
            prior_strength=strength,
            exploration_floor=exploration_floor,
        ).fit()
        return cls(prior)

    def _selection(
        self, context: Mapping[str, Any], candidates: Sequence[str], values: np.ndarray,
        costs: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(posterior mean rates, selection probabilities), cached per eligible set."""
        key = (context.get(self.prior.group_key), tuple(candidates), values.tobytes(),
               costs.tobytes())
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        params = np.asarray([self.prior.posterior(context, a) for a in candidates])
        ts = thompson_probabilities(params[:, 0], params[:, 1], values, costs,
                                    self.prior.n_points)
        floor = self.prior.exploration_floor
        result = (params[:, 0] / params.sum(axis=1), (1 - floor) * ts + floor / len(candidates))
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def decide(self, context, candidates, values, costs, k, rng, candidate_features=None):
        p, probs = self._selection(context, candidates, values, costs)
        score = p * values - costs
        picks = plackett_luce_slate(probs, k, rng)
        # The prior's own greedy choice is its most likely pick.
        return Scored(p, score, _slots(picks, probs))

    def top_features(self, context, action_id, n=3):
        group = context.get(self.prior.group_key)
        return [(f"{self.prior.group_key}={group}", 0.0)] if group is not None else []


class CompiledTrees:
    """One action's fitted histogram gradient boosting ensemble as flat numpy arrays.

    sklearn's own predict costs milliseconds per call on a single row (input checks, thread
    pool); walking every tree at once, one depth level per step, costs microseconds. Only
    numeric splits without missing values are compiled (our context vectors have neither
    categories nor NaN); anything else raises ValueError and the caller keeps sklearn.
    """

    def __init__(self, estimator: Any):
        predictors = [tree for iteration in estimator._predictors for tree in iteration]
        if any(len(iteration) != 1 for iteration in estimator._predictors):
            raise ValueError("multi-class ensembles are not compiled")
        sizes = [len(t.nodes) for t in predictors]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        nodes = np.concatenate([t.nodes for t in predictors])
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not compiled")
        self.roots = offsets
        self.feature = nodes["feature_idx"].astype(np.int64)
        self.threshold = nodes["num_threshold"].astype(float)
        self.left = nodes["left"].astype(np.int64) + np.repeat(offsets, sizes)
        self.right = nodes["right"].astype(np.int64) + np.repeat(offsets, sizes)
        self.leaf = nodes["is_leaf"].astype(bool)
        self.value = nodes["value"].astype(float)
        self.depth = int(nodes["depth"].max()) if len(nodes) else 0
        self.baseline = float(np.ravel(estimator._baseline_prediction)[0])
        self.proba = hasattr(estimator, "predict_proba")

    def predict(self, x: np.ndarray) -> float:
        node = self.roots.copy()
        for _level in range(self.depth):
            inner = ~self.leaf[node]
            if not inner.any():
                break
            at = node[inner]
            go_left = x[self.feature[at]] <= self.threshold[at]
            node[inner] = np.where(go_left, self.left[at], self.right[at])
        raw = self.baseline + float(self.value[node].sum())
        return float(expit(raw)) if self.proba else raw


class ModelScorer:
    """A fitted `PersonalizedPolicy` (or bare `RewardModel`), compiled for one catalog."""

    policy = "model"

    def __init__(
        self,
        model: Any,
        version: str,
        catalog: ActionCatalog,
        strategy: Strategy,
        score_scale: float = 1.0,
    ):
        self.model = model
        self.version = version
        self.strategy = strategy
        # Exploration strategies see scores divided by this (e.g. the largest action value),
        # so a softmax temperature reads as a share of that value, whatever the currency.
        self.score_scale = score_scale
        reward_model = getattr(model, "reward_model_", model)
        self.reward_model = reward_model
        self.personalize = bool(getattr(model, "personalize_", True))
        self.action_ids = list(catalog)
        self._row = {a: i for i, a in enumerate(self.action_ids)}
        table = catalog.feature_table()
        self.table = table
        self.compiled = self.personalize and all(
            hasattr(reward_model, name) for name in LINEAR_BLOCKS
        )
        if self.compiled:
            self.logistic = reward_model.kind_ == "logistic"
            self.base, self.per_action = self._compile(self.action_ids, table)
            self.family = getattr(model, "family_", "linear")
            self.boosted = getattr(model, "boosted_model_", None)
            self.trees: dict[str, CompiledTrees] = {}
            if self.family != "linear" and self.boosted is not None:
                try:
                    self.trees = {a: CompiledTrees(m) for a, m in self.boosted.models_.items()}
                except (AttributeError, ValueError):
                    self.compiled = False
        if self.compiled:
            # The fast path must give the policy's own predictions; if the policy scores in
            # a way the blocks and trees do not capture, every request uses its predict.
            self.compiled = self._agrees_with_model()
        if not self.personalize:
            self.constant_p = np.asarray(
                model.predict([{}], self.action_ids, table)[0], dtype=float
            )

    def _compile(self, ids: Sequence[str], table: ActionFeatures) -> tuple[np.ndarray, np.ndarray]:
        rm = self.reward_model
        f = rm.action_featurizer_.transform(list(ids), table)
        d = len(rm.context_featurizer_.feature_names_)
        base = np.full(len(ids), rm.intercept_) + f @ rm.w_action_
        per_action = f @ rm.W_feature_context_
        per_action = per_action.reshape(len(ids), d)
        for row, action_id in enumerate(ids):
            known = rm.action_featurizer_.id_index(action_id)
            if known is not None:
                base[row] += rm.w_id_[known]
                per_action[row] += rm.W_id_context_[known]
        return base, per_action

    def _probe_contexts(self) -> list[dict[str, Any]]:
        featurizer = self.reward_model.context_featurizer_
        probes: list[dict[str, Any]] = [{}]
        numeric = {name: mean + std for name, (mean, std, _edges) in featurizer.numeric_.items()}
        categorical = {name: values[0] for name, values in featurizer.categorical_.items()}
        probes.append({**numeric, **categorical})
        probes.append({name: -value for name, value in numeric.items()})
        return probes

    def _agrees_with_model(self) -> bool:
        for context in self._probe_contexts():
            fast = self.probabilities(context, self.action_ids)
            slow = np.asarray(self.model.predict([context], self.action_ids, self.table)[0])
            if not np.allclose(fast, slow, rtol=1e-6, atol=1e-9):
                return False
        return True

    def _context_vector(self, context: Mapping[str, Any]) -> np.ndarray:
        return self.reward_model.context_featurizer_.transform([context])[0]

    def probabilities(
        self,
        context: Mapping[str, Any],
        candidates: Sequence[str],
        candidate_features: ActionFeatures | None = None,
    ) -> np.ndarray:
        custom = candidate_features or {}
        if not self.personalize:
            p = np.asarray([self.constant_p[self._row[a]] if a in self._row else np.nan
                            for a in candidates])
            if custom or np.isnan(p).any():
                p = np.asarray(
                    self.model.predict([context], candidates, {**self.table, **custom})[0],
                    dtype=float,
                )
            return p
        if not self.compiled:
            return np.asarray(
                self.model.predict([context], candidates, {**self.table, **custom})[0],
                dtype=float,
            )
        x = self._context_vector(context)
        rows = [self._row.get(a, -1) for a in candidates]
        if custom or min(rows, default=0) < 0:
            base, per_action = self._compile(candidates, {**self.table, **custom})
        else:
            base, per_action = self.base[rows], self.per_action[rows]
        logits = base + x @ self.reward_model.w_context_ + per_action @ x
        linear = expit(logits) if self.logistic else logits
        if self.family == "linear" or self.boosted is None:
            return linear
        xb = self.boosted.context_featurizer_.transform([context])[0]
        means = self.boosted.means_
        boosted = np.asarray([
            self.trees[a].predict(xb) if a in self.trees else means.get(a, np.nan)
            for a in candidates
        ])
        return self.model._combine(self.family, linear[None, :], boosted[None, :])[0]

    def decide(self, context, candidates, values, costs, k, rng, candidate_features=None):
        p = self.probabilities(context, candidates, candidate_features)
        score = p * values - costs
        picks = sample_slate(score / self.score_scale, k, self.strategy, rng)
        return Scored(p, score, _slots(picks, score))

    def top_features(self, context, action_id, n=3):
        if not self.personalize:
            return [(CONSTANT_POLICY_FEATURE, 0.0)]
        if not self.compiled:
            contributions = getattr(self.reward_model, "contributions", None)
            return contributions(context, action_id)[:n] if contributions else []
        row = self._row.get(action_id)
        if row is None:
            return []
        x = self._context_vector(context)
        parts = x * self.per_action[row]
        names = self.reward_model.context_featurizer_.feature_names_
        order = np.argsort(-np.abs(parts))[:n]
        return [(names[j], float(parts[j])) for j in order if parts[j] != 0]
