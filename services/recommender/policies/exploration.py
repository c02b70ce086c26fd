"""Exploration: turn scores into selection probabilities and sample with exact propensities.

Every strategy is a function ``scores -> probabilities`` over the candidates, so the
probability logged with a decision is the very number the sampler used.

Slates (k > 1) are drawn without replacement: slot 1 is drawn from the strategy's
probabilities over all candidates; slot j from the same strategy applied to the candidates
not yet chosen. The propensity logged for slot j is the conditional probability
``P(slot j = a | slots 1..j-1)``. For slot 1 it is the marginal probability of the action
being shown first, which is what off-policy learning uses; the product over slots 1..j is
the probability of the whole ranked prefix.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Strategy = Callable[[np.ndarray], np.ndarray]


def greedy(scores: np.ndarray) -> np.ndarray:
    """All mass on the best score; ties go to the first candidate (deterministic)."""
    probs = np.zeros(len(scores))
    probs[int(np.argmax(scores))] = 1.0
    return probs


def epsilon_greedy(scores: np.ndarray, epsilon: float) -> np.ndarray:
    """``1 - epsilon + epsilon / K`` on the best candidate, ``epsilon / K`` on the others."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be within [0, 1], got {epsilon}")
    k = len(scores)
    probs = np.full(k, epsilon / k)
    probs[int(np.argmax(scores))] += 1.0 - epsilon
    return probs


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``exp(score / temperature)`` normalised; temperature is in score units."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = (np.asarray(scores, dtype=float) - np.max(scores)) / temperature
    weights = np.exp(z)
    return weights / weights.sum()


def make_strategy(name: str, epsilon: float = 0.1, temperature: float = 0.05) -> Strategy:
    """Strategy by name: ``greedy``, ``epsilon_greedy`` or ``softmax``."""
    if name == "greedy":
        return greedy
    if name == "epsilon_greedy":
        return lambda scores: epsilon_greedy(scores, epsilon)
    if name == "softmax":
        return lambda scores: softmax(scores, temperature)
    raise ValueError(f"unknown exploration strategy {name!r}")


def sample_slate(
    scores: np.ndarray,
    k: int,
    strategy: Strategy,
    rng: np.random.Generator,
) -> list[tuple[int, float]]:
    """Draw ``min(k, len(scores))`` distinct candidates; returns (index, propensity) per slot."""
    remaining = list(range(len(scores)))
    scores = np.asarray(scores, dtype=float)
    slate: list[tuple[int, float]] = []
    for _slot in range(min(k, len(remaining))):
        probs = strategy(scores[remaining])
        pick = int(rng.choice(len(remaining), p=probs))
        slate.append((remaining[pick], float(probs[pick])))
        remaining.pop(pick)
    return slate
