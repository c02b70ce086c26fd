import numpy as np
import pytest

from services.recommender import ope, simulate
from services.recommender.logs import BanditLog, LoggedDecision


def _log(rows, candidates=None):
    return BanditLog.from_decisions(
        [LoggedDecision({}, a, p, r, candidates) for a, p, r in rows]
    )


def test_estimators_on_a_hand_computed_log():
    log = _log([("a", 0.5, 1.0), ("b", 0.5, 0.0), ("a", 0.25, 0.0), ("b", 0.75, 1.0)])
    target = np.tile([1.0, 0.0], (4, 1))  # always "a"
    estimates = ope.evaluate(log, target, q_hat=np.full((4, 2), 0.5))
    assert estimates["IPS"].value == pytest.approx((2 * 1 + 0 + 4 * 0 + 0) / 4)
    assert estimates["SNIPS"].value == pytest.approx(2 / 6)
    # DR: q(a) = 0.5 everywhere plus w * (r - 0.5) on the rows that logged "a".
    assert estimates["DR"].value == pytest.approx((0.5 + 2 * 0.5 + 0.5 + 0.5 + 4 * -0.5 + 0.5) / 4)
    assert all(e.ci_low <= e.value <= e.ci_high for e in estimates.values())


def test_target_on_a_non_candidate_is_refused():
    log = _log([("a", 1.0, 1.0)], candidates=("a",))
    with pytest.raises(ValueError, match="shape"):
        ope.evaluate(log, np.ones((1, 2)))
    log = BanditLog.from_decisions(
        [LoggedDecision({}, "a", 0.5, 1.0, ("a", "b")), LoggedDecision({}, "a", 1.0, 0.0, ("a",))]
    )
    target = np.asarray([[0.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="non-candidate"):
        ope.evaluate(log, target)


def test_constant_matrix_falls_back_where_the_action_is_not_a_candidate():
    mask = np.asarray([[True, True], [True, False]])
    target = ope.constant_matrix(1, mask, np.asarray([[0.0, 0.0], [0.0, 0.0]]))
    assert target.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_confidence_intervals_cover_the_true_value_at_the_nominal_rate():
    # 100 independent logs from a known population: the 95% intervals of IPS, SNIPS and DR
    # for a fixed target policy should cover its true value in about 95 of them.
    sim = simulate.strong_context(0, n_actions=4, n_numeric=2)
    rng = np.random.default_rng(7)
    covered = {"IPS": 0, "SNIPS": 0, "DR": 0}
    widths = {"IPS": [], "DR": []}
    runs = 100
    for _ in range(runs):
        contexts = sim.contexts(600, rng)
        logging = rng.dirichlet(np.ones(4), size=len(contexts)) * 0.8 + 0.05
        log = sim.log(contexts, logging, rng)
        probs = sim.response(log.contexts)
        order = [list(sim.action_ids).index(a) for a in log.action_ids]
        truth_matrix = probs[:, order]
        target = ope.greedy_matrix(truth_matrix + rng.normal(0, 0.1, truth_matrix.shape),
                                   log.candidate_mask)
        true_value = float((target * truth_matrix).sum(axis=1).mean())
        q_hat = np.clip(truth_matrix + rng.normal(0, 0.05, truth_matrix.shape), 0, 1)
        for name, estimate in ope.evaluate(log, target, q_hat).items():
            covered[name] += estimate.covers(true_value)
            if name in widths:
                widths[name].append(estimate.ci_high - estimate.ci_low)
    for name, count in covered.items():
        assert 0.88 * runs <= count <= runs, (name, count)
    assert np.mean(widths["DR"]) < np.mean(widths["IPS"])  # a good q_hat reduces variance
