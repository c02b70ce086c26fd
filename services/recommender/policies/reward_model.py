"""Reward model: P(positive outcome | context, action), or E[reward] for non-binary rewards.

An L2-regularised linear model on ``[x | e_a | f_a | x (x) e_a | x (x) f_a]`` (see
``featurizer``). The penalty strength is chosen by K-fold cross-validation on held-out log
loss (squared error for non-binary rewards), so the same defaults work on a small noisy
campaign (strong shrinkage: per-action effects stay close to the shared ones) and on a large
log with strong context effects (weak shrinkage). Logistic regression fitted by maximum
likelihood with a log-loss-chosen penalty is well calibrated, which arbitration
(``p * value - cost``) and doubly robust evaluation both need.

Scoring never builds the interaction matrix: the coefficients are kept as blocks and a
candidate's logit is ``b + x.w_x + w_id[a] + f_a.w_f + x.W_id[a] + x.W_f.f_a``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold

from services.recommender.policies.featurizer import (
    ActionFeaturizer,
    Context,
    ContextFeaturizer,
    _check_fitted,
    interaction_design,
)

DEFAULT_CS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
ActionFeatures = Mapping[str, Mapping[str, float]]


def _is_binary(rewards: np.ndarray) -> bool:
    return bool(np.isin(rewards, (0.0, 1.0)).all())


class RewardModel(BaseEstimator):
    """Estimator of the expected reward of each candidate action in a context."""

    def __init__(
        self,
        Cs: Sequence[float] = DEFAULT_CS,
        cv: int = 3,
        n_bins: int = 4,
        max_categories: int = 30,
        min_frequency: int = 5,
        max_iter: int = 300,
        random_state: int = 0,
    ):
        self.Cs = Cs
        self.cv = cv
        self.n_bins = n_bins
        self.max_categories = max_categories
        self.min_frequency = min_frequency
        self.max_iter = max_iter
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------

    def _estimator(self, C: float) -> LogisticRegression | Ridge:
        if self.kind_ == "logistic":
            return LogisticRegression(C=C, max_iter=self.max_iter)
        return Ridge(alpha=1.0 / C)

    def _set_C(self, estimator: LogisticRegression | Ridge, C: float) -> None:
        if isinstance(estimator, LogisticRegression):
            estimator.set_params(C=C)
        else:
            estimator.set_params(alpha=1.0 / C)

    def _loss(self, estimator: Any, design: Any, rewards: np.ndarray) -> float:
        if self.kind_ == "logistic":
            p = np.clip(estimator.predict_proba(design)[:, 1], 1e-9, 1 - 1e-9)
            return float(-np.mean(rewards * np.log(p) + (1 - rewards) * np.log(1 - p)))
        return float(np.mean((estimator.predict(design) - rewards) ** 2))

    def _choose_C(self, design: Any, rewards: np.ndarray, weight: np.ndarray | None) -> float:
        Cs = sorted(self.Cs)
        if len(Cs) == 1:
            return float(Cs[0])
        splitter = (
            StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
            if self.kind_ == "logistic"
            else KFold(self.cv, shuffle=True, random_state=self.random_state)
        )
        losses = np.zeros(len(Cs))
        for train, test in splitter.split(design, rewards):
            # Warm start along the ascending path: each fit starts from the previous solution.
            estimator = self._estimator(Cs[0])
            if self.kind_ == "logistic":
                estimator.set_params(warm_start=True)
            for i, C in enumerate(Cs):
                self._set_C(estimator, C)
                estimator.fit(
                    design[train],
                    rewards[train],
                    sample_weight=None if weight is None else weight[train],
                )
                losses[i] += self._loss(estimator, design[test], rewards[test])
        # Cs are ascending, so a tie goes to the stronger penalty.
        best = int(np.argmin(np.round(losses, 10)))
        return float(Cs[best])

    def fit(
        self,
        contexts: Sequence[Context],
        actions: Sequence[str],
        rewards: Sequence[float],
        action_features: ActionFeatures | None = None,
        sample_weight: Sequence[float] | None = None,
        C: float | None = None,
    ) -> RewardModel:
        """Fit on logged (context, action, reward); ``C`` skips cross-validation."""
        rewards_arr = np.asarray(rewards, dtype=float)
        if len(rewards_arr) == 0:
            raise ValueError("cannot fit a reward model on an empty log")
        self.kind_ = "logistic" if _is_binary(rewards_arr) else "linear"
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.context_featurizer_ = ContextFeaturizer(
            n_bins=self.n_bins, max_categories=self.max_categories,
            min_frequency=self.min_frequency,
        ).fit(contexts)
        self.action_featurizer_ = ActionFeaturizer().fit(actions, action_features)
        x = self.context_featurizer_.transform(contexts)
        index = np.asarray([self.action_featurizer_.id_index(a) for a in actions])
        f = self.action_featurizer_.transform(actions)
        n_actions = len(self.action_featurizer_.action_ids_)
        design = interaction_design(x, index, n_actions, f)
        d, m = x.shape[1], f.shape[1]
        self.constant_ = self.kind_ == "logistic" and len(np.unique(rewards_arr)) < 2
        if self.constant_:
            # Every logged reward is equal: nothing to learn beyond that rate.
            rate = float(np.clip(rewards_arr.mean(), 1e-6, 1 - 1e-6))
            self.C_ = float("nan")
            self.intercept_ = float(np.log(rate / (1 - rate)))
            coef = np.zeros(design.shape[1])
        else:
            self.C_ = float(C) if C is not None else self._choose_C(design, rewards_arr, weight)
            estimator = self._estimator(self.C_).fit(design, rewards_arr, sample_weight=weight)
            coef = np.ravel(estimator.coef_)
            self.intercept_ = float(np.ravel(estimator.intercept_)[0])
        offsets = np.cumsum([0, d, n_actions, m, n_actions * d, m * d])
        self.w_context_ = coef[offsets[0]:offsets[1]]
        self.w_id_ = coef[offsets[1]:offsets[2]]
        self.w_action_ = coef[offsets[2]:offsets[3]]
        self.W_id_context_ = coef[offsets[3]:offsets[4]].reshape(n_actions, d)
        self.W_feature_context_ = coef[offsets[4]:offsets[5]].reshape(m, d)
        return self

    # -- scoring ---------------------------------------------------------------------------

    @property
    def action_ids(self) -> list[str]:
        _check_fitted(self, "intercept_")
        return list(self.action_featurizer_.action_ids_)

    def decision_function(
        self,
        contexts: Sequence[Context] | np.ndarray,
        candidates: Sequence[str],
        candidate_features: ActionFeatures | None = None,
    ) -> np.ndarray:
        """Linear scores, shape (n_contexts, n_candidates)."""
        _check_fitted(self, "intercept_")
        x = (
            contexts
            if isinstance(contexts, np.ndarray)
            else self.context_featurizer_.transform(contexts)
        )
        index = [self.action_featurizer_.id_index(a) for a in candidates]
        f = self.action_featurizer_.transform(candidates, candidate_features)
        known = np.asarray([i is not None for i in index], dtype=bool)
        w_id = np.zeros(len(candidates))
        per_action = np.zeros((len(candidates), x.shape[1]))
        if known.any():
            rows = np.asarray([i for i in index if i is not None])
            w_id[known] = self.w_id_[rows]
            per_action[known] = self.W_id_context_[rows]
        scores = self.intercept_ + (x @ self.w_context_)[:, None] + (w_id + f @ self.w_action_)
        scores = scores + x @ per_action.T + (x @ self.W_feature_context_.T) @ f.T
        return scores

    def predict(
        self,
        contexts: Sequence[Context] | np.ndarray,
        candidates: Sequence[str],
        candidate_features: ActionFeatures | None = None,
    ) -> np.ndarray:
        """Expected reward (probability of a positive outcome for binary rewards)."""
        scores = self.decision_function(contexts, candidates, candidate_features)
        return expit(scores) if self.kind_ == "logistic" else scores

    def contributions(
        self, context: Context, action_id: str, features: ActionFeatures | None = None
    ) -> list[tuple[str, float]]:
        """Per-feature contribution to the action's score beyond the shared context effect,
        largest magnitude first: the "top contributing features" of a recommendation."""
        _check_fitted(self, "intercept_")
        x = self.context_featurizer_.transform([context])[0]
        f = self.action_featurizer_.transform([action_id], features)[0]
        weights = self.W_feature_context_.T @ f
        i = self.action_featurizer_.id_index(action_id)
        if i is not None:
            weights = weights + self.W_id_context_[i]
        parts = x * weights
        names = self.context_featurizer_.feature_names_
        order = np.argsort(-np.abs(parts))
        return [(names[j], float(parts[j])) for j in order if parts[j] != 0]
