"""The trained policy: reward models chosen, and guarded, by cross-fitted off-policy value.

``fit`` runs 2-fold cross-fitting: each candidate reward model (regularised linear model,
per-action boosted trees, and their average) is fitted on one half of the log and predicts
the other half. The doubly robust value of each model's greedy policy is then estimated on
the rows it never saw, and the best model family is kept.

A model that chases noise loses to treating everyone the same. So the chosen greedy policy
must also beat the best *fixed ranking* of actions (each action's average value over the
customers for whom it is eligible; with a common candidate set this is the best constant
action) by more than ``fallback_z`` standard errors of the paired difference. Otherwise the
policy scores every context with those fixed values. Either way the linear model is kept for
explanations and to score actions never seen in the log from their features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold

from services.recommender import ope
from services.recommender.logs import BanditLog
from services.recommender.policies.boosted import BoostedRewardModel
from services.recommender.policies.featurizer import Context, _check_fitted
from services.recommender.policies.reward_model import ActionFeatures, RewardModel

FAMILIES = ("linear", "boosted", "blend")


def fixed_values(log: BanditLog, q: np.ndarray) -> np.ndarray:
    """DR value of each action averaged over the rows where it is a candidate."""
    rows = np.arange(len(log))
    w = np.zeros(log.candidate_mask.shape)
    w[rows, log.logged_index] = 1.0 / log.propensities
    residual = (log.rewards - q[rows, log.logged_index])[:, None]
    terms = q + w * residual
    counts = log.candidate_mask.sum(axis=0)
    sums = np.where(log.candidate_mask, terms, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the paired difference of per-row value terms."""
    diff = a - b
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


class PersonalizedPolicy(BaseEstimator):
    """Greedy-on-reward-model policy with a safety fallback to a fixed ranking."""

    def __init__(
        self,
        reward_model: RewardModel | None = None,
        boosted_model: BoostedRewardModel | None = None,
        families: Sequence[str] = FAMILIES,
        n_folds: int = 2,
        fallback_z: float = 1.645,
        random_state: int = 0,
    ):
        self.reward_model = reward_model
        self.boosted_model = boosted_model
        self.families = families
        self.n_folds = n_folds
        self.fallback_z = fallback_z
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------

    def _fit_linear(self, log: BanditLog, C: float | None = None) -> RewardModel:
        model = clone(self.reward_model) if self.reward_model is not None else RewardModel()
        return model.fit(log.contexts, log.actions, log.rewards, log.action_features, C=C)

    def _fit_boosted(self, log: BanditLog) -> BoostedRewardModel:
        model = (
            clone(self.boosted_model)
            if self.boosted_model is not None
            else BoostedRewardModel(random_state=self.random_state)
        )
        return model.fit(log.contexts, log.actions, log.rewards)

    @staticmethod
    def _combine(
        family: str, linear: np.ndarray, boosted: np.ndarray | None
    ) -> np.ndarray:
        if family == "linear" or boosted is None:
            return linear
        filled = np.where(np.isnan(boosted), linear, boosted)
        return filled if family == "boosted" else (filled + linear) / 2

    def _needs_boosted(self) -> bool:
        return any(f != "linear" for f in self.families)

    def cross_fitted_predictions(
        self, log: BanditLog, C: float | None
    ) -> dict[str, np.ndarray]:
        """Out-of-fold reward predictions per model family, each (n_rows, n_actions)."""
        shape = log.candidate_mask.shape
        linear = np.zeros(shape)
        boosted = np.zeros(shape) if self._needs_boosted() else None
        folds = KFold(self.n_folds, shuffle=True, random_state=self.random_state)
        for train, test in folds.split(np.arange(len(log))):
            part, held_out = log.subset(train), log.subset(test)
            model = self._fit_linear(part, C)
            linear[test] = model.predict(held_out.contexts, log.action_ids, log.action_features)
            if boosted is not None:
                trees = self._fit_boosted(part)
                boosted[test] = trees.predict(held_out.contexts, log.action_ids)
        return {f: self._combine(f, linear, boosted) for f in self.families}

    def _choose_family(self, greedy_terms: dict[str, np.ndarray]) -> str:
        """The simplest family (first listed) unless another one beats it by more than
        ``fallback_z`` standard errors: picking the best of several noisy estimates would
        otherwise favour whichever model overfits the noise most."""
        base = self.families[0]
        best, best_lift = base, 0.0
        for family in self.families[1:]:
            lift, se = _paired(greedy_terms[family], greedy_terms[base])
            if lift > self.fallback_z * se and lift > best_lift:
                best, best_lift = family, lift
        return best

    def fit(self, log: BanditLog) -> PersonalizedPolicy:
        unknown = set(self.families) - set(FAMILIES)
        if unknown or not self.families:
            raise ValueError(f"unknown model families {sorted(unknown)}; use {FAMILIES}")
        linear = self._fit_linear(log)
        C = None if np.isnan(linear.C_) else linear.C_
        report: dict[str, Any] = {"n": len(log), "C": linear.C_, "kind": linear.kind_}
        family = "linear"
        if len(log) >= 20 * self.n_folds:
            q_by_family = self.cross_fitted_predictions(log, C)
            # The average of the candidates is the most accurate baseline for DR terms.
            q_dr = np.mean(list(q_by_family.values()), axis=0)
            greedy_terms = {
                f: ope.doubly_robust_terms(log, ope.greedy_matrix(q, log.candidate_mask), q_dr)
                for f, q in q_by_family.items()
            }
            values = fixed_values(log, q_dr)
            fixed_terms = ope.doubly_robust_terms(
                log, ope.greedy_matrix(np.tile(values, (len(log), 1)), log.candidate_mask), q_dr
            )
            family = self._choose_family(greedy_terms)
            lift, lift_se = _paired(greedy_terms[family], fixed_terms)
            personalize = lift > self.fallback_z * lift_se
            final = (
                ope.greedy_matrix(q_by_family[family], log.candidate_mask)
                if personalize
                else ope.greedy_matrix(np.tile(values, (len(log), 1)), log.candidate_mask)
            )
            report.update(
                {
                    "crossfit_estimates": {
                        name: estimate.as_dict()
                        for name, estimate in ope.evaluate(log, final, q_dr).items()
                    },
                    "crossfit_values": {f: float(t.mean()) for f, t in greedy_terms.items()},
                    "crossfit_fixed_ranking_value": float(fixed_terms.mean()),
                    "lift_over_fixed_ranking": lift,
                    "lift_se": lift_se,
                }
            )
        else:
            # Too little data to check personalisation: rank by the model at the mean.
            personalize = False
            values = linear.predict(log.contexts, log.action_ids, log.action_features).mean(0)
        self.linear_model_ = linear
        self.boosted_model_ = (
            self._fit_boosted(log) if personalize and family != "linear" else None
        )
        self.family_ = family if personalize else "fixed"
        self.personalize_ = bool(personalize)
        self.fixed_values_ = {a: float(v) for a, v in zip(log.action_ids, values, strict=True)}
        self.context_mean_ = linear.context_featurizer_.transform(log.contexts).mean(axis=0)
        report.update(
            {
                "family": self.family_,
                "personalize": self.personalize_,
                "fixed_values": self.fixed_values_,
            }
        )
        self.fit_report_ = report
        return self

    # -- scoring ---------------------------------------------------------------------------

    @property
    def reward_model_(self) -> RewardModel:
        """The linear reward model (exact scorer when ``family_`` is linear or fixed;
        with boosted or blend families use ``predict``)."""
        _check_fitted(self, "linear_model_")
        return self.linear_model_

    @property
    def action_ids(self) -> list[str]:
        _check_fitted(self, "linear_model_")
        return list(self.fixed_values_)

    def predict(
        self,
        contexts: Sequence[Context],
        candidates: Sequence[str],
        candidate_features: ActionFeatures | None = None,
    ) -> np.ndarray:
        """Expected reward of each candidate in each context, shape (n, n_candidates).

        Without personalisation the rows are identical: the fixed values for logged actions,
        the linear model at the average context for actions never logged.
        """
        _check_fitted(self, "linear_model_")
        if self.personalize_:
            linear = self.linear_model_.predict(contexts, candidates, candidate_features)
            boosted = (
                None
                if self.boosted_model_ is None
                else self.boosted_model_.predict(contexts, candidates)
            )
            return self._combine(self.family_, linear, boosted)
        at_mean = self.linear_model_.predict(
            self.context_mean_[None, :], candidates, candidate_features
        )[0]
        row = np.asarray(
            [self.fixed_values_.get(a, at_mean[j]) for j, a in enumerate(candidates)]
        )
        return np.tile(row, (len(contexts), 1))

    def predict_one(
        self,
        context: Context,
        candidates: Sequence[str],
        candidate_features: ActionFeatures | None = None,
    ) -> np.ndarray:
        return self.predict([context], candidates, candidate_features)[0]

    def contributions(
        self, context: Context, action_id: str, features: ActionFeatures | None = None
    ) -> list[tuple[str, float]]:
        """Top contributing context features for an action (from the linear model)."""
        _check_fitted(self, "linear_model_")
        return self.linear_model_.contributions(context, action_id, features)
