"""Decision policies as scikit-learn style estimators."""

from services.recommender.policies.cold_start import BetaPriorPolicy, thompson_probabilities
from services.recommender.policies.exploration import (
    epsilon_greedy,
    greedy,
    make_strategy,
    sample_slate,
    softmax,
)
from services.recommender.policies.featurizer import ActionFeaturizer, ContextFeaturizer
from services.recommender.policies.personalized import PersonalizedPolicy
from services.recommender.policies.reward_model import RewardModel

__all__ = [
    "ActionFeaturizer",
    "BetaPriorPolicy",
    "ContextFeaturizer",
    "PersonalizedPolicy",
    "RewardModel",
    "epsilon_greedy",
    "greedy",
    "make_strategy",
    "sample_slate",
    "softmax",
    "thompson_probabilities",
]
