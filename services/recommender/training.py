"""Train, decide and evaluate on logged data: the steps behind the offline commands.

No I/O and no clock here: the command-line layer reads files, passes the time in and
prints. The HTTP service uses the same functions after joining decisions with outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.recommender import ope
from services.recommender.logs import BanditLog
from services.recommender.policies import PersonalizedPolicy, make_strategy, sample_slate
from services.recommender.policies.reward_model import ActionFeatures


def on_policy_estimate(log: BanditLog) -> ope.Estimate:
    """The logging policy's own value: the mean logged reward, with a 95% interval."""
    return ope._mean_interval("on_policy", log.rewards)


def crossfit_q(log: BanditLog, C: float | None = None, random_state: int = 0) -> np.ndarray:
    """Out-of-fold linear reward predictions on ``log``, the baseline of DR estimates."""
    helper = PersonalizedPolicy(families=("linear",), random_state=random_state)
    return helper.cross_fitted_predictions(log, C)["linear"]


def policy_targets(model: PersonalizedPolicy, log: BanditLog) -> dict[str, np.ndarray]:
    """Target matrices of the model's greedy policy and of each constant policy."""
    scores = model.predict(log.contexts, log.action_ids, log.action_features)
    targets = {"greedy": ope.greedy_matrix(scores, log.candidate_mask)}
    # Where a constant action is not a candidate, fall back to the model's fixed ranking.
    fixed = np.tile(
        [model.fixed_values_.get(a, -np.inf) for a in log.action_ids], (len(log), 1)
    )
    for j, action in enumerate(log.action_ids):
        targets[f"constant:{action}"] = ope.constant_matrix(j, log.candidate_mask, fixed)
    return targets


def evaluate_model(
    model: PersonalizedPolicy, log: BanditLog, q_hat: np.ndarray | None = None
) -> dict[str, dict[str, ope.Estimate]]:
    """IPS / SNIPS / DR of the greedy policy and each constant policy, plus the logging
    policy's on-policy value. ``q_hat`` defaults to cross-fitted predictions on ``log``."""
    if q_hat is None:
        C = model.linear_model_.C_
        q_hat = crossfit_q(log, None if np.isnan(C) else C)
    results = {
        name: ope.evaluate(log, target, q_hat)
        for name, target in policy_targets(model, log).items()
    }
    results["logging"] = {"on_policy": on_policy_estimate(log)}
    return results


def train(
    log: BanditLog, current: PersonalizedPolicy | None = None, random_state: int = 0
) -> tuple[PersonalizedPolicy, dict[str, Any]]:
    """Fit a policy and the evaluation its manifest records for the promotion gate.

    ``candidate`` is the cross-fitted estimate of the new greedy policy (each half of the
    log is scored by a model that never saw it); ``logging`` the logged policy's value;
    ``current`` the currently promoted model's greedy value on the same log.
    """
    policy = PersonalizedPolicy(random_state=random_state).fit(log)
    evaluation: dict[str, Any] = {
        "candidate": policy.fit_report_.get("crossfit_estimates"),
        "logging": {"on_policy": on_policy_estimate(log).as_dict()},
    }
    if current is not None:
        q_hat = crossfit_q(log, random_state=random_state)
        scores = current.predict(log.contexts, log.action_ids, log.action_features)
        target = ope.greedy_matrix(scores, log.candidate_mask)
        evaluation["current"] = {
            name: estimate.as_dict()
            for name, estimate in ope.evaluate(log, target, q_hat).items()
        }
    return policy, evaluation


@dataclass(frozen=True)
class Choice:
    action: str
    propensity: float
    score: float


def decide_batch(
    model: PersonalizedPolicy,
    contexts: Sequence[Mapping[str, Any]],
    candidates: Sequence[Sequence[str]],
    candidate_features: Sequence[ActionFeatures],
    greedy: bool,
    rng: np.random.Generator,
    strategy: str = "epsilon_greedy",
    epsilon: float = 0.1,
    temperature: float = 0.05,
) -> list[Choice]:
    """One action per context. Rows sharing a candidate list are scored together."""
    choose = make_strategy("greedy" if greedy else strategy, epsilon, temperature)
    groups: dict[str, list[int]] = {}
    for i, (ids, feats) in enumerate(zip(candidates, candidate_features, strict=True)):
        groups.setdefault(repr((tuple(ids), sorted(feats.items()))), []).append(i)
    choices: list[Choice | None] = [None] * len(contexts)
    for rows in groups.values():
        ids = list(candidates[rows[0]])
        scores = model.predict([contexts[i] for i in rows], ids, candidate_features[rows[0]])
        for row, row_scores in zip(rows, scores, strict=True):
            (index, propensity), = sample_slate(row_scores, 1, choose, rng)
            choices[row] = Choice(ids[index], propensity, float(row_scores[index]))
    return [c for c in choices if c is not None]
