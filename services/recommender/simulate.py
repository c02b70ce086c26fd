"""Simulated populations with known response models, to measure policies honestly.

Each simulator knows the true probability of a positive outcome for every (context, action),
so the true value of any policy, of each constant policy and of the oracle (the best action
for every context) can be computed exactly on a sample of contexts, and logs can be drawn
from any logging policy with exact propensities.

- ``weak_campaign``: a randomised e-mail campaign (three actions, a few customer attributes,
  sparse binary reward) where personalising gains little next to the noise.
- ``strong_context``: many actions, the best one depends strongly on the context.
- ``heterogeneous_population``: catalog actions with phase eligibility and heterogeneous
  effects (channel preference, price sensitivity, loyalty), meant to be logged by the
  cold-start policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from services.recommender.logs import BanditLog, LoggedDecision
from services.recommender.policies.cold_start import BetaPriorPolicy

Contexts = list[dict[str, Any]]


@dataclass(frozen=True)
class Simulator:
    name: str
    action_ids: tuple[str, ...]
    sample_contexts: Callable[[int, np.random.Generator], Contexts]
    response: Callable[[Contexts], np.ndarray]
    eligibility: Callable[[Contexts], np.ndarray] | None = None
    action_features: dict[str, dict[str, float]] = field(default_factory=dict)

    def contexts(self, n: int, rng: np.random.Generator) -> Contexts:
        return self.sample_contexts(n, rng)

    def mask(self, contexts: Contexts) -> np.ndarray:
        if self.eligibility is None:
            return np.ones((len(contexts), len(self.action_ids)), dtype=bool)
        return self.eligibility(contexts)

    def value(self, contexts: Contexts, choice: np.ndarray) -> float:
        """True expected reward of choosing ``choice[i]`` (action index) in context i."""
        probs = self.response(contexts)
        mask = self.mask(contexts)
        rows = np.arange(len(contexts))
        if not mask[rows, choice].all():
            raise ValueError("a choice is not eligible in its context")
        return float(probs[rows, choice].mean())

    def oracle_choice(self, contexts: Contexts) -> np.ndarray:
        return np.argmax(np.where(self.mask(contexts), self.response(contexts), -np.inf), axis=1)

    def oracle_value(self, contexts: Contexts) -> float:
        return self.value(contexts, self.oracle_choice(contexts))

    def constant_values(self, contexts: Contexts) -> dict[str, float]:
        """True value of each constant policy (on rows where the action is not eligible, the
        oracle's choice is used, matching ``ope.constant_matrix`` up to that fallback)."""
        probs = self.response(contexts)
        mask = self.mask(contexts)
        best = np.where(mask, probs, -np.inf).max(axis=1)
        return {
            a: float(np.where(mask[:, j], probs[:, j], best).mean())
            for j, a in enumerate(self.action_ids)
        }

    def log(
        self, contexts: Contexts, logging_probs: np.ndarray, rng: np.random.Generator
    ) -> BanditLog:
        """Draw one action per context from ``logging_probs`` and its reward."""
        return BanditLog.from_decisions(self.draw(contexts, logging_probs, rng),
                                        self.action_features)

    def draw(
        self, contexts: Contexts, logging_probs: np.ndarray, rng: np.random.Generator
    ) -> list[LoggedDecision]:
        probs = self.response(contexts)
        mask = self.mask(contexts)
        p = np.where(mask, logging_probs, 0.0)
        p = p / p.sum(axis=1, keepdims=True)
        # Inverse-CDF draw per row, vectorised.
        u = rng.random(len(contexts))[:, None]
        chosen = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
        successes = rng.random(len(contexts))
        return [
            self._decision(context, int(a), float(p[i, a]), probs[i, a] > successes[i], mask[i])
            for i, (context, a) in enumerate(zip(contexts, chosen, strict=True))
        ]

    def _decision(
        self, context: dict[str, Any], action: int, propensity: float, success: bool,
        mask: np.ndarray,
    ) -> LoggedDecision:
        candidates = None
        if self.eligibility is not None:
            candidates = tuple(a for a, ok in zip(self.action_ids, mask, strict=True) if ok)
        return LoggedDecision(context, self.action_ids[action], propensity, float(success),
                              candidates)

    def uniform_log(self, n: int, rng: np.random.Generator) -> BanditLog:
        contexts = self.contexts(n, rng)
        return self.log(contexts, np.ones((n, len(self.action_ids))), rng)

    def full_information_log(self, contexts: Contexts, rng: np.random.Generator) -> BanditLog:
        """Every eligible action's reward for every context (propensity 1): what a model
        trained with full information sees."""
        probs = self.response(contexts)
        mask = self.mask(contexts)
        draws = rng.random(probs.shape)
        decisions = [
            self._decision(context, int(a), 1.0, probs[i, a] > draws[i, a], mask[i])
            for i, context in enumerate(contexts)
            for a in np.flatnonzero(mask[i])
        ]
        return BanditLog.from_decisions(decisions, self.action_features)

    def cold_start_log(
        self,
        n: int,
        rng: np.random.Generator,
        batches: int = 5,
        policy: BetaPriorPolicy | None = None,
    ) -> BanditLog:
        """Log drawn by the cold-start policy, refitted on all outcomes after each batch."""
        policy = policy if policy is not None else BetaPriorPolicy()
        seen: list[LoggedDecision] = []
        policy.fit()
        for size in np.diff(np.linspace(0, n, batches + 1).astype(int)):
            contexts = self.contexts(int(size), rng)
            mask = self.mask(contexts)
            logging = np.zeros(mask.shape)
            for i, context in enumerate(contexts):
                eligible = np.flatnonzero(mask[i])
                logging[i, eligible] = policy.probabilities(
                    context, [self.action_ids[j] for j in eligible]
                )
            seen.extend(self.draw(contexts, logging, rng))
            policy.fit([d.context for d in seen], [d.action for d in seen],
                       [d.reward for d in seen])
        return BanditLog.from_decisions(seen, self.action_features)


# -- (a) weak effects: a randomised e-mail campaign ---------------------------------------


def weak_campaign(seed: int = 0, base_logit: float = -2.6, heterogeneity: float = 0.15
                  ) -> Simulator:
    """Three actions (no e-mail, men's e-mail, women's e-mail), binary visit-like reward.

    The men's e-mail lifts everyone more than the women's; women's-only buyers
    respond slightly better to the women's e-mail (``heterogeneity`` on the logit scale), so
    the best personalised policy beats the best constant one only by a hair.
    """
    rng = np.random.default_rng(seed)
    effects = np.asarray([0.0, 0.5, 0.25]) + rng.normal(0, 0.02, 3)

    def sample(n: int, r: np.random.Generator) -> Contexts:
        mens = r.random(n) < 0.55
        womens = np.where(mens, r.random(n) < 0.4, True)
        history = np.round(np.exp(r.normal(5.0, 1.0, n)), 2)
        recency = r.integers(1, 13, n)
        zip_code = r.choice(["urban", "suburban", "rural"], n, p=[0.4, 0.45, 0.15])
        newbie = r.random(n) < 0.5
        channel = r.choice(["phone", "web", "multichannel"], n, p=[0.44, 0.44, 0.12])
        return [
            {
                "recency": int(recency[i]),
                "history": float(history[i]),
                "mens": bool(mens[i]),
                "womens": bool(womens[i]),
                "zip_code": str(zip_code[i]),
                "newbie": bool(newbie[i]),
                "channel": str(channel[i]),
            }
            for i in range(n)
        ]

    def response(contexts: Contexts) -> np.ndarray:
        recency = np.asarray([c["recency"] for c in contexts], dtype=float)
        history = np.asarray([c["history"] for c in contexts])
        mens = np.asarray([c["mens"] for c in contexts], dtype=float)
        womens = np.asarray([c["womens"] for c in contexts], dtype=float)
        newbie = np.asarray([c["newbie"] for c in contexts], dtype=float)
        base = base_logit - 0.06 * recency + 0.15 * np.log(history / 150) - 0.3 * newbie
        logits = base[:, None] + effects[None, :]
        logits[:, 1] += heterogeneity * (mens - womens)
        logits[:, 2] += heterogeneity * (womens - mens)
        return expit(logits)

    return Simulator("weak_campaign", ("no_email", "mens_email", "womens_email"), sample, response)


# -- (b) strong context effects, many actions ---------------------------------------------


def strong_context(seed: int = 0, n_actions: int = 12, n_numeric: int = 5) -> Simulator:
    """``n_actions`` actions whose success depends strongly on numeric features and a segment.

    logit(x, a) = b_a + theta_a . x + gamma_a[segment] + eta_a * tanh(2 x_0): mostly linear
    in the context with one bent feature, so the best action changes across the space.
    """
    rng = np.random.default_rng(seed)
    segments = ["a", "b", "c", "d"]
    bias = rng.normal(-1.5, 0.3, n_actions)
    theta = rng.normal(0, 1.2, (n_actions, n_numeric))
    gamma = rng.normal(0, 1.0, (n_actions, len(segments)))
    eta = rng.normal(0, 1.0, n_actions)
    action_ids = tuple(f"action_{i:02d}" for i in range(n_actions))

    def sample(n: int, r: np.random.Generator) -> Contexts:
        x = r.normal(0, 1, (n, n_numeric))
        seg = r.integers(0, len(segments), n)
        return [
            {**{f"x{j}": float(x[i, j]) for j in range(n_numeric)}, "segment": segments[seg[i]]}
            for i in range(n)
        ]

    def response(contexts: Contexts) -> np.ndarray:
        x = np.asarray([[c[f"x{j}"] for j in range(n_numeric)] for c in contexts])
        seg = np.asarray([segments.index(c["segment"]) for c in contexts])
        logits = bias[None, :] + x @ theta.T + gamma[:, seg].T + eta[None, :] * np.tanh(
            2 * x[:, [0]]
        )
        return expit(logits)

    return Simulator("strong_context", action_ids, sample, response)


# -- heterogeneous population over catalog actions, logged by the cold-start policy -------

HETEROGENEOUS_ACTIONS = (
    "no_action",
    "flash_sale_email",
    "flash_sale_zalo",
    "review_digest_email",
    "abandoned_cart_zalo",
    "free_shipping_messenger",
    "cross_sell_email",
    "loyalty_reward",
    "referral_invite",
)
_ELIGIBLE_PHASES = {
    "no_action": ("pre_purchase", "purchase", "post_purchase"),
    "flash_sale_email": ("pre_purchase", "purchase"),
    "flash_sale_zalo": ("pre_purchase", "purchase"),
    "review_digest_email": ("pre_purchase", "purchase"),
    "abandoned_cart_zalo": ("purchase",),
    "free_shipping_messenger": ("purchase",),
    "cross_sell_email": ("post_purchase",),
    "loyalty_reward": ("post_purchase",),
    "referral_invite": ("post_purchase",),
}


def heterogeneous_population(seed: int = 0) -> Simulator:
    """Customers in three phases; who responds to what depends on their attributes.

    - messaging-channel preference (``email`` / ``zalo``): the matching channel works, the
      other one barely does;
    - price sensitivity (low average order value): discounts and free shipping work;
    - loyal customers (many orders) respond to loyalty rewards and referrals, new ones to
      social proof; satisfied recent buyers to cross-selling.
    """
    rng = np.random.default_rng(seed)
    jitter = rng.normal(0, 0.1, len(HETEROGENEOUS_ACTIONS))
    ids = HETEROGENEOUS_ACTIONS
    col = {a: i for i, a in enumerate(ids)}

    def sample(n: int, r: np.random.Generator) -> Contexts:
        phase = r.choice(["pre_purchase", "purchase", "post_purchase"], n, p=[0.4, 0.3, 0.3])
        pref = r.choice(["email", "zalo"], n, p=[0.5, 0.5])
        aov = np.round(np.exp(r.normal(12.5, 0.6, n)), -3)
        orders = r.poisson(np.where(phase != "pre_purchase", 1.5, 0.2))
        days = r.integers(0, 60, n)
        member = r.random(n) < 0.4
        return [
            {
                "phase": str(phase[i]),
                "preferred_channel": str(pref[i]),
                "avg_order_value": float(aov[i]),
                "orders_count": int(orders[i]),
                "days_since_last_visit": int(days[i]),
                "is_member": bool(member[i]),
            }
            for i in range(n)
        ]

    def response(contexts: Contexts) -> np.ndarray:
        zalo = np.asarray([c["preferred_channel"] == "zalo" for c in contexts], dtype=float)
        email = 1 - zalo
        price = np.asarray([c["avg_order_value"] for c in contexts])
        sensitive = (price < 250_000).astype(float)
        orders = np.asarray([c["orders_count"] for c in contexts], dtype=float)
        loyal = (orders >= 3).astype(float)
        recent = np.asarray([c["days_since_last_visit"] < 14 for c in contexts], dtype=float)
        member = np.asarray([c["is_member"] for c in contexts], dtype=float)
        base = -3.0 + 0.4 * recent + 0.2 * member
        logit = np.tile(base[:, None], (1, len(ids))) + jitter[None, :]
        logit[:, col["flash_sale_email"]] += 0.2 + 1.6 * email * sensitive - 0.8 * zalo
        logit[:, col["flash_sale_zalo"]] += 0.2 + 1.6 * zalo * sensitive - 0.8 * email
        logit[:, col["review_digest_email"]] += 0.3 + 1.2 * email * (1 - sensitive)
        logit[:, col["abandoned_cart_zalo"]] += 0.5 + 1.4 * zalo + 0.5 * recent
        logit[:, col["free_shipping_messenger"]] += 0.4 + 1.5 * sensitive
        logit[:, col["cross_sell_email"]] += 0.2 + 1.3 * email * recent
        logit[:, col["loyalty_reward"]] += -0.2 + 1.8 * loyal
        logit[:, col["referral_invite"]] += -0.5 + 1.2 * loyal * member + 0.8 * zalo
        return expit(logit)

    def eligibility(contexts: Contexts) -> np.ndarray:
        return np.asarray(
            [[c["phase"] in _ELIGIBLE_PHASES[a] for a in ids] for c in contexts], dtype=bool
        )

    return Simulator("heterogeneous_population", ids, sample, response, eligibility)


def greedy_choice(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Index of the best-scoring eligible action per row."""
    return np.argmax(np.where(mask, scores, -np.inf), axis=1)
