import json

import numpy as np
import pytest

from services.recommender import simulate
from services.recommender.policies import PersonalizedPolicy


@pytest.fixture(scope="session")
def small_sim():
    return simulate.strong_context(0, n_actions=4, n_numeric=3)


@pytest.fixture(scope="session")
def small_log(small_sim):
    return small_sim.uniform_log(3000, np.random.default_rng(11))


@pytest.fixture(scope="session")
def small_policy(small_log):
    return PersonalizedPolicy().fit(small_log)


@pytest.fixture(scope="session")
def log_file(tmp_path_factory, small_log):
    path = tmp_path_factory.mktemp("logs") / "log.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for c, a, p, r in zip(small_log.contexts, small_log.actions, small_log.propensities,
                              small_log.rewards, strict=True):
            handle.write(json.dumps({"context": c, "action": a, "propensity": float(p),
                                     "reward": float(r)}) + "\n")
    return path
