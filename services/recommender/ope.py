"""Off-policy evaluation: the value a target policy would have had on a logged sample.

For row i with context x_i, logged action a_i, logging propensity p_i and reward r_i, and a
target policy pi (probabilities over the row's candidates):

- IPS:   V = mean(w_i r_i) with w_i = pi(a_i | x_i) / p_i;
- SNIPS: V = sum(w_i r_i) / sum(w_i)  (self-normalised; biased, lower variance);
- DR:    V = mean( sum_a pi(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)) ), with a reward model
  q fitted on other data (cross-fitting) so the correction term stays unbiased.

Each estimate carries a 95% normal confidence interval from the per-row terms (delta method
for SNIPS). These need the logged propensities to be the true selection probabilities and
every action the target policy can choose to have a positive logging probability.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from services.recommender.logs import BanditLog

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    method: str
    value: float
    ci_low: float
    ci_high: float
    n: int

    @property
    def stderr(self) -> float:
        return (self.ci_high - self.ci_low) / (2 * Z_95)

    def covers(self, value: float) -> bool:
        return self.ci_low <= value <= self.ci_high

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _mean_interval(method: str, terms: np.ndarray) -> Estimate:
    n = len(terms)
    mean = float(terms.mean())
    half = Z_95 * float(terms.std(ddof=1)) / np.sqrt(n) if n > 1 else float("inf")
    return Estimate(method, mean, mean - half, mean + half, n)


def importance_weights(log: BanditLog, target: np.ndarray) -> np.ndarray:
    """pi(a_i | x_i) / p_i for each row."""
    rows = np.arange(len(log))
    return target[rows, log.logged_index] / log.propensities


def ips(log: BanditLog, target: np.ndarray) -> Estimate:
    return _mean_interval("IPS", importance_weights(log, target) * log.rewards)


def snips(log: BanditLog, target: np.ndarray) -> Estimate:
    w = importance_weights(log, target)
    total = w.sum()
    n = len(w)
    if total <= 0:
        return Estimate("SNIPS", float("nan"), float("nan"), float("nan"), n)
    value = float((w * log.rewards).sum() / total)
    # Delta method: the ratio's variance from the centred terms w_i (r_i - V).
    centred = w * (log.rewards - value) / w.mean()
    half = Z_95 * float(centred.std(ddof=1)) / np.sqrt(n) if n > 1 else float("inf")
    return Estimate("SNIPS", value, value - half, value + half, n)


def doubly_robust_terms(log: BanditLog, target: np.ndarray, q_hat: np.ndarray) -> np.ndarray:
    rows = np.arange(len(log))
    direct = (np.where(log.candidate_mask, target * q_hat, 0.0)).sum(axis=1)
    residual = log.rewards - q_hat[rows, log.logged_index]
    return direct + importance_weights(log, target) * residual


def doubly_robust(log: BanditLog, target: np.ndarray, q_hat: np.ndarray) -> Estimate:
    return _mean_interval("DR", doubly_robust_terms(log, target, q_hat))


def evaluate(
    log: BanditLog, target: np.ndarray, q_hat: np.ndarray | None = None
) -> dict[str, Estimate]:
    """IPS, SNIPS and (when ``q_hat`` is given) DR estimates of ``target`` on ``log``.

    ``target`` and ``q_hat`` have shape (n_rows, n_actions) over ``log.action_ids``; target
    probabilities outside a row's candidate set must be zero.
    """
    if target.shape != log.candidate_mask.shape:
        raise ValueError(f"target has shape {target.shape}, expected {log.candidate_mask.shape}")
    if np.any(target[~log.candidate_mask] > 0):
        raise ValueError("the target policy puts probability on a non-candidate action")
    estimates = {"IPS": ips(log, target), "SNIPS": snips(log, target)}
    if q_hat is not None:
        estimates["DR"] = doubly_robust(log, target, q_hat)
    return estimates


def greedy_matrix(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One-hot target of the best-scoring candidate per row (first on ties)."""
    masked = np.where(mask, scores, -np.inf)
    target = np.zeros_like(mask, dtype=float)
    target[np.arange(len(mask)), np.argmax(masked, axis=1)] = 1.0
    return target


def constant_matrix(action_index: int, mask: np.ndarray, fallback_scores: np.ndarray) -> np.ndarray:
    """Target that always picks one action; where it is not a candidate, the best-scoring
    candidate instead (so the policy is defined on every row)."""
    target = greedy_matrix(fallback_scores, mask)
    available = mask[:, action_index]
    target[available] = 0.0
    target[available, action_index] = 1.0
    return target
