import numpy as np
import pytest
from scipy.stats import chisquare
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from services.recommender import simulate
from services.recommender.policies import (
    BetaPriorPolicy,
    ContextFeaturizer,
    PersonalizedPolicy,
    RewardModel,
    epsilon_greedy,
    greedy,
    make_strategy,
    sample_slate,
    softmax,
    thompson_probabilities,
)
from services.recommender.policies.boosted import BoostedRewardModel
from services.recommender.policies.featurizer import ActionFeaturizer

ESTIMATORS = [
    ContextFeaturizer(n_bins=3),
    RewardModel(Cs=(0.1,)),
    BoostedRewardModel(max_iter=20),
    PersonalizedPolicy(n_folds=3),
    BetaPriorPolicy(prior_strength=5.0),
    ActionFeaturizer(),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_estimator_contract(estimator):
    params = estimator.get_params()
    copy = clone(estimator)
    assert copy.get_params().keys() == params.keys()
    assert not any(name.endswith("_") for name in vars(copy))  # __init__ only stores


@pytest.mark.parametrize(
    ("estimator", "call"),
    [
        (ContextFeaturizer(), lambda e: e.transform([{}])),
        (RewardModel(), lambda e: e.predict([{}], ["a"])),
        (BoostedRewardModel(), lambda e: e.predict([{}], ["a"])),
        (PersonalizedPolicy(), lambda e: e.predict([{}], ["a"])),
        (BetaPriorPolicy(), lambda e: e.probabilities({}, ["a"])),
    ],
    ids=lambda x: type(x).__name__ if not callable(x) else "",
)
def test_unfitted_estimators_raise_not_fitted(estimator, call):
    with pytest.raises(NotFittedError):
        call(estimator)


def test_context_featurizer_encodes_numbers_bools_and_categories():
    contexts = [{"age": float(a), "vip": a % 2 == 0, "city": "hcm" if a < 6 else "hn"}
                for a in range(10)]
    featurizer = ContextFeaturizer(n_bins=2, min_frequency=1).fit(contexts)
    assert featurizer.feature_names_ == ["age", "age:bin0", "age:bin1", "vip", "city=hcm",
                                         "city=hn"]
    row = featurizer.transform([{"age": 9.0, "vip": True, "city": "hn", "extra": "ignored"}])[0]
    assert row[0] == pytest.approx((9 - 4.5) / np.std(range(10)))
    assert row[1:3].tolist() == [0.0, 1.0]
    assert row[4:].tolist() == [0.0, 1.0]
    unknown = featurizer.transform([{"city": "danang"}])[0]
    assert unknown.tolist() == [0.0] * 6  # unknown category, missing numbers: the mean


def test_rare_categories_are_dropped():
    contexts = [{"city": "hcm"}] * 10 + [{"city": "rare"}]
    assert ContextFeaturizer(min_frequency=5).fit(contexts).feature_names_ == ["city=hcm"]


def test_reward_model_learns_context_action_interaction_and_is_calibrated():
    rng = np.random.default_rng(0)
    contexts = [{"zalo_user": bool(rng.random() < 0.5)} for _ in range(6000)]
    actions = [str(rng.choice(["email", "zalo"])) for _ in contexts]
    truth = {(False, "email"): 0.3, (False, "zalo"): 0.1, (True, "email"): 0.1,
             (True, "zalo"): 0.4}
    rewards = [float(rng.random() < truth[(c["zalo_user"], a)])
               for c, a in zip(contexts, actions, strict=True)]
    model = RewardModel().fit(contexts, actions, rewards)
    p = model.predict([{"zalo_user": False}, {"zalo_user": True}], ["email", "zalo"])
    np.testing.assert_allclose(p, [[0.3, 0.1], [0.1, 0.4]], atol=0.03)


def test_reward_model_scores_a_new_action_from_its_features():
    # Success depends on the discount an action offers, for price-sensitive customers only.
    rng = np.random.default_rng(1)
    table = {"a": {"discount": 0.0}, "b": {"discount": 0.1}, "c": {"discount": 0.3}}
    contexts = [{"price_sensitive": bool(rng.random() < 0.5)} for _ in range(6000)]
    actions = [str(rng.choice(list(table))) for _ in contexts]
    rewards = [
        float(rng.random() < 0.1 + (c["price_sensitive"] * table[a]["discount"]))
        for c, a in zip(contexts, actions, strict=True)
    ]
    model = RewardModel().fit(contexts, actions, rewards, action_features=table)
    new = {"d": {"discount": 0.25}, "e": {"discount": 0.0}}
    p = model.predict([{"price_sensitive": True}], ["d", "e"], new)[0]
    assert p[0] > p[1] + 0.1


def test_reward_model_handles_continuous_and_constant_rewards():
    contexts = [{"x": float(i % 7)} for i in range(300)]
    actions = ["a", "b"] * 150
    spend = [float(c["x"]) * (2 if a == "b" else 1) for c, a in zip(contexts, actions,
                                                                  strict=True)]
    model = RewardModel().fit(contexts, actions, spend)
    assert model.kind_ == "linear"
    assert model.predict([{"x": 6.0}], ["a", "b"])[0].tolist() == pytest.approx([6, 12], abs=1.5)
    flat = RewardModel().fit(contexts, actions, [0.0] * 300)
    assert flat.predict([{"x": 1.0}], ["a"])[0, 0] < 1e-3


def test_contributions_name_the_features_that_favour_an_action():
    rng = np.random.default_rng(2)
    contexts = [{"zalo_user": bool(rng.random() < 0.5)} for _ in range(3000)]
    actions = [str(rng.choice(["email", "zalo"])) for _ in contexts]
    rewards = [float(rng.random() < (0.5 if c["zalo_user"] == (a == "zalo") else 0.05))
               for c, a in zip(contexts, actions, strict=True)]
    model = RewardModel().fit(contexts, actions, rewards)
    top = model.contributions({"zalo_user": True}, "zalo")
    assert top[0][0] == "zalo_user" and top[0][1] > 0


# -- exploration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "scores", "expected"),
    [
        (greedy, [0.1, 0.5, 0.5], [0, 1, 0]),
        (lambda s: epsilon_greedy(s, 0.3), [0.1, 0.5, 0.2], [0.1, 0.8, 0.1]),
        (lambda s: epsilon_greedy(s, 0.0), [0.1, 0.5, 0.2], [0, 1, 0]),
        (lambda s: softmax(s, 1.0), [0.0, np.log(3.0)], [0.25, 0.75]),
        (make_strategy("softmax", temperature=0.5), [0.0, np.log(3.0) / 2], [0.25, 0.75]),
    ],
)
def test_strategy_probabilities(strategy, scores, expected):
    np.testing.assert_allclose(strategy(np.asarray(scores)), expected)


def test_bad_strategy_parameters_are_refused():
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy(np.zeros(2), 1.5)
    with pytest.raises(ValueError, match="temperature"):
        softmax(np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="unknown"):
        make_strategy("ucb")


def test_slate_propensities_match_selection_frequencies():
    scores = np.asarray([0.2, 0.9, 0.5, 0.1])
    strategy = make_strategy("epsilon_greedy", epsilon=0.4)
    rng = np.random.default_rng(3)
    n = 20_000
    first = np.zeros(4)
    second_after_best = np.zeros(4)
    logged = {}
    for _ in range(n):
        slate = sample_slate(scores, 2, strategy, rng)
        (a, pa), (b, pb) = slate
        first[a] += 1
        logged[(0, a)] = pa
        if a == 1:
            second_after_best[b] += 1
            logged[(1, b)] = pb
    expected_first = np.asarray([logged[(0, i)] for i in range(4)])
    assert expected_first.sum() == pytest.approx(1.0)
    assert chisquare(first, expected_first * n).pvalue > 0.001
    # Slot 2 given slot 1 = best: epsilon-greedy over the three remaining candidates.
    remaining = [0, 2, 3]
    expected_second = np.asarray([logged[(1, i)] for i in remaining])
    np.testing.assert_allclose(expected_second, [0.4 / 3, 0.6 + 0.4 / 3, 0.4 / 3])
    observed = second_after_best[remaining]
    assert chisquare(observed, expected_second * observed.sum()).pvalue > 0.001


# -- cold start ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alpha", "beta", "value", "cost"),
    [
        ([2, 3, 5], [8, 7, 5], None, None),
        ([20, 2], [80, 8], None, None),
        ([2, 3, 1], [8, 7, 1], [100.0, 50.0, 0.0], [5.0, 1.0, 0.0]),
    ],
)
def test_thompson_probabilities_match_monte_carlo(alpha, beta, value, cost):
    rng = np.random.default_rng(4)
    draws = rng.beta(alpha, beta, size=(200_000, len(alpha)))
    v = np.ones(len(alpha)) if value is None else np.asarray(value)
    c = np.zeros(len(alpha)) if cost is None else np.asarray(cost)
    scores = draws * v - c
    mc = np.bincount(np.argmax(scores, axis=1), minlength=len(alpha)) / len(draws)
    np.testing.assert_allclose(thompson_probabilities(alpha, beta, value, cost), mc, atol=0.006)


def test_beta_prior_policy_updates_per_phase_and_keeps_a_floor():
    contexts = [{"phase": "purchase"}] * 100 + [{"phase": "post_purchase"}] * 100
    actions = ["cart"] * 100 + ["survey"] * 100
    rewards = [1.0] * 60 + [0.0] * 40 + [0.0] * 100
    policy = BetaPriorPolicy(prior_rates={"cart": 0.1, "survey": 0.1}, prior_strength=10,
                             exploration_floor=0.2).fit(contexts, actions, rewards)
    assert policy.posterior({"phase": "purchase"}, "cart") == (61.0, 49.0)
    assert policy.posterior({"phase": "post_purchase"}, "cart") == (1.0, 9.0)
    assert policy.posterior({}, "survey") == (1.0, 9.0)
    probs = policy.probabilities({"phase": "purchase"}, ["cart", "survey"])
    assert probs.sum() == pytest.approx(1.0)
    assert probs[1] == pytest.approx(0.1, abs=1e-3)  # floor / K: cart nearly always wins
    assert policy.probabilities({"phase": "purchase"}, ["cart", "survey"]) is probs  # cached


def test_cold_start_logged_propensities_equal_selection_frequencies():
    policy = BetaPriorPolicy(prior_rates={"a": 0.1, "b": 0.12, "c": 0.05}).fit()
    rng = np.random.default_rng(5)
    counts = np.zeros(3)
    logged = None
    n = 20_000
    for _ in range(n):
        ((index, propensity),) = policy.sample({"phase": "purchase"}, ["a", "b", "c"], 1, rng)
        counts[index] += 1
        logged = policy.probabilities({"phase": "purchase"}, ["a", "b", "c"])
        assert propensity == logged[index]
    assert chisquare(counts, logged * n).pvalue > 0.001


def test_personalized_policy_falls_back_to_a_fixed_ranking_on_pure_noise():
    rng = np.random.default_rng(6)
    sim = simulate.weak_campaign(0, base_logit=-3.0, heterogeneity=0.0)
    log = sim.uniform_log(6000, rng)
    policy = PersonalizedPolicy().fit(log)
    assert not policy.personalize_
    rows = policy.predict(sim.contexts(3, rng), list(sim.action_ids))
    assert (rows == rows[0]).all()
    assert policy.fit_report_["family"] == "fixed"
    # An action never logged is still scored (from the linear model at the mean context).
    assert np.isfinite(policy.predict([{}], ["brand_new"])[0, 0])
