"""Off-policy quality on simulated populations whose true response is known.

Values are *true* expected rewards computed from the simulator on fresh contexts, never
estimates, except where the DR estimate itself is under test.
"""

import numpy as np
import pytest

from services.recommender import ope, simulate
from services.recommender.policies import PersonalizedPolicy, RewardModel


def true_greedy_value(sim, policy, contexts):
    scores = policy.predict(contexts, list(sim.action_ids))
    return sim.value(contexts, simulate.greedy_choice(scores, sim.mask(contexts)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weak_campaign_greedy_does_not_lose_to_best_single_action(seed):
    # Personalisation is worth almost nothing here (heterogeneity 0.05 on the logit scale)
    # and the reward is sparse: a model that chases noise loses to the best e-mail.
    rng = np.random.default_rng(1000 + seed)
    sim = simulate.weak_campaign(seed, base_logit=-3.2, heterogeneity=0.05)
    log = sim.uniform_log(20_000, rng)
    policy = PersonalizedPolicy().fit(log)
    test = sim.contexts(20_000, rng)
    best_constant = max(sim.constant_values(test).values())
    assert true_greedy_value(sim, policy, test) >= best_constant - 1e-9


@pytest.mark.parametrize("seed", [0, 1])
def test_strong_context_greedy_is_close_to_full_information_model(seed):
    rng = np.random.default_rng(2000 + seed)
    sim = simulate.strong_context(seed, n_actions=10)
    log = sim.uniform_log(8_000, rng)
    policy = PersonalizedPolicy().fit(log)
    # Same model class, trained with every action's reward for each of 2,000 contexts.
    full = sim.full_information_log(sim.contexts(2_000, rng), rng)
    full_model = RewardModel(Cs=(1.0,)).fit(full.contexts, full.actions, full.rewards)
    test = sim.contexts(5_000, rng)
    ids = list(sim.action_ids)
    full_value = sim.value(test, simulate.greedy_choice(full_model.predict(test, ids),
                                                        sim.mask(test)))
    greedy_value = true_greedy_value(sim, policy, test)
    assert policy.personalize_
    assert max(sim.constant_values(test).values()) < 0.6 * full_value  # context matters
    assert greedy_value >= 0.95 * full_value
    assert greedy_value >= 0.9 * sim.oracle_value(test)


@pytest.mark.parametrize("seed", [0, 1])
def test_acceptance_heterogeneous_population_logged_by_cold_start(seed):
    rng = np.random.default_rng(3000 + seed)
    sim = simulate.heterogeneous_population(seed)
    log = sim.cold_start_log(8_000, rng)
    policy = PersonalizedPolicy().fit(log)
    test = sim.contexts(10_000, rng)
    oracle = sim.oracle_value(test)
    greedy_value = true_greedy_value(sim, policy, test)
    fixed = np.tile([policy.fixed_values_[a] for a in sim.action_ids], (len(test), 1))
    fixed_value = sim.value(test, simulate.greedy_choice(fixed, sim.mask(test)))
    assert fixed_value < 0.8 * oracle  # one ranking for everyone is far from good enough
    assert greedy_value >= 0.9 * oracle

    # The DR estimate of this greedy policy on a fresh cold-start log covers its true value
    # on the contexts of that log.
    fresh = sim.cold_start_log(8_000, rng)
    q_hat = policy.predict(fresh.contexts, fresh.action_ids)
    target = ope.greedy_matrix(q_hat, fresh.candidate_mask)
    estimate = ope.doubly_robust(fresh, target, q_hat)
    ids = list(sim.action_ids)
    chosen = [ids.index(fresh.action_ids[j]) for j in target.argmax(axis=1)]
    truth = sim.value(fresh.contexts, np.asarray(chosen))
    assert estimate.covers(truth), (estimate, truth)
