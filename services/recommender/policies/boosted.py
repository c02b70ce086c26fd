"""Gradient-boosted reward model: one tree ensemble per logged action (a "T-learner").

Trees find interactions between context features (price-sensitive *and* prefers Zalo) that
the linear model cannot express. Each action's ensemble is fitted on the rows where that
action was logged, with early stopping on a held-out share and a minimum leaf size, so an
action with little data stays close to its average. It cannot score an action it never saw
(no rows): ``predict`` returns NaN there and the caller falls back to the linear model,
which can use the action's features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from services.recommender.policies.featurizer import Context, ContextFeaturizer, _check_fitted


class BoostedRewardModel(BaseEstimator):
    def __init__(
        self,
        max_depth: int = 3,
        learning_rate: float = 0.1,
        max_iter: int = 100,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        min_rows: int = 100,
        random_state: int = 0,
    ):
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.min_rows = min_rows
        self.random_state = random_state

    def _ensemble(self, binary: bool) -> BaseEstimator:
        params = {
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "max_iter": self.max_iter,
            "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization,
            "early_stopping": True,
            "validation_fraction": 0.2,
            "n_iter_no_change": 5,
            "random_state": self.random_state,
        }
        if binary:
            return HistGradientBoostingClassifier(**params)
        return HistGradientBoostingRegressor(**params)

    def fit(
        self,
        contexts: Sequence[Context],
        actions: Sequence[str],
        rewards: Sequence[float],
    ) -> BoostedRewardModel:
        rewards_arr = np.asarray(rewards, dtype=float)
        self.binary_ = bool(np.isin(rewards_arr, (0.0, 1.0)).all())
        # No bins: trees make their own splits on the standardised numbers.
        self.context_featurizer_ = ContextFeaturizer(n_bins=0).fit(contexts)
        x = self.context_featurizer_.transform(contexts)
        actions_arr = np.asarray(actions)
        self.models_: dict[str, BaseEstimator] = {}
        self.means_: dict[str, float] = {}
        for action in dict.fromkeys(actions):
            rows = actions_arr == action
            y = rewards_arr[rows]
            # Shrink small-sample means towards the overall mean (10 pseudo-observations).
            self.means_[action] = float((y.sum() + 10 * rewards_arr.mean()) / (len(y) + 10))
            if rows.sum() >= self.min_rows and len(np.unique(y)) > 1:
                self.models_[action] = self._ensemble(self.binary_).fit(x[rows], y)
        return self

    def predict(self, contexts: Sequence[Context] | np.ndarray, candidates: Sequence[str]
                ) -> np.ndarray:
        """Expected reward, shape (n, n_candidates); NaN for actions never logged."""
        _check_fitted(self, "models_")
        x = (
            contexts
            if isinstance(contexts, np.ndarray)
            else self.context_featurizer_.transform(contexts)
        )
        out = np.full((x.shape[0], len(candidates)), np.nan)
        for j, action in enumerate(candidates):
            model = self.models_.get(action)
            if model is not None:
                out[:, j] = (
                    model.predict_proba(x)[:, 1] if self.binary_ else model.predict(x)
                )
            elif action in self.means_:
                out[:, j] = self.means_[action]
        return out
