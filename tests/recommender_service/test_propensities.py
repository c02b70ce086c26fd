"""Logged propensities are the real selection probabilities (chi-square over many decisions),
and the holdout group has the configured share and never changes for a customer."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.stats import binomtest, chisquare

from services.recommender.app import create_app
from services.recommender.decision_log import InMemoryDecisionLog
from services.recommender.policies.exploration import make_strategy
from services.recommender.scoring import ModelScorer, PriorScorer
from services.recommender.serving import (
    DecisionPipeline,
    DecisionRequest,
    ModelHolder,
    PipelineConfig,
    holdout_bucket,
)
from services.streaming.publisher import InMemoryPublisher
from tests.recommender_service.conftest import (
    ALL_OPT_IN,
    CATALOG,
    profile_state,
    zone_at_local_hour,
)

NOON = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 12:00 in Ho Chi Minh City
ALPHA = 0.001  # a true hypothesis fails one run in a thousand


def assert_matches(counts: Counter, propensities: dict[str, float], n: int) -> None:
    ids = sorted(propensities)
    assert abs(sum(propensities.values()) - 1) < 1e-9
    observed = np.asarray([counts[a] for a in ids], dtype=float)
    expected = np.asarray([propensities[a] * n for a in ids])
    assert observed.sum() == n
    result = chisquare(observed, expected)
    assert result.pvalue > ALPHA, (dict(zip(ids, observed, strict=True)),
                                   dict(zip(ids, expected, strict=True)))


def pipeline(scorer) -> DecisionPipeline:
    holder = ModelHolder(PriorScorer.from_catalog(CATALOG, 0.1), lambda m, v: m)
    holder.current = scorer
    return DecisionPipeline(CATALOG, holder, PipelineConfig(holdout_share=0.0))


def collect(pipe: DecisionPipeline, state, n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    request = DecisionRequest("c-stat", {"timezone": "Asia/Ho_Chi_Minh"}, k=k)
    return [pipe.decide(request, state, NOON, rng) for _ in range(n)]


@pytest.mark.parametrize("policy", ["prior", "model"])
def test_first_slot_frequencies_match_logged_propensities(policy, trained_policies):
    scorer = (PriorScorer.from_catalog(CATALOG, 0.1) if policy == "prior" else
              ModelScorer(trained_policies["a"], "v1", CATALOG,
                          make_strategy("epsilon_greedy", epsilon=0.3), 500000))
    state = profile_state(consent=ALL_OPT_IN, engagement=3.0)
    decisions = collect(pipeline(scorer), state, n=6000, k=1, seed=11)
    propensity: dict[str, float] = {}
    counts: Counter = Counter()
    for decision in decisions:
        first = decision.record.actions[0]
        counts[first.action_id] += 1
        # The same context and candidates always give the same propensity per action.
        assert propensity.setdefault(first.action_id, first.propensity) == first.propensity
    # Exploration gives every eligible action a chance; all of them were drawn.
    assert set(propensity) == set(decisions[0].record.candidates)
    assert_matches(counts, propensity, len(decisions))


def test_second_slot_frequencies_match_conditional_propensities():
    state = profile_state(consent=ALL_OPT_IN)
    decisions = collect(pipeline(PriorScorer.from_catalog(CATALOG, 0.3)), state, n=6000, k=2,
                        seed=5)
    by_first: dict[str, Counter] = defaultdict(Counter)
    conditional: dict[str, dict[str, float]] = defaultdict(dict)
    for decision in decisions:
        actions = decision.record.actions
        if len(actions) < 2:
            assert actions[0].action_id == "no_action"  # nothing follows doing nothing
            continue
        first, second = actions[0].action_id, actions[1]
        by_first[first][second.action_id] += 1
        known = conditional[first].setdefault(second.action_id, second.propensity)
        assert known == pytest.approx(second.propensity)
    first, counts = max(by_first.items(), key=lambda item: sum(item[1].values()))
    assert sum(counts.values()) > 1000
    assert_matches(counts, conditional[first], sum(counts.values()))


def test_api_logs_the_propensities_it_samples_with(service_settings, put_profile):
    put_profile("c-api", profile_state(consent=ALL_OPT_IN))
    sink = InMemoryDecisionLog()
    app = create_app(service_settings, decision_log=sink, feedback_publisher=InMemoryPublisher(),
                     seed=21)
    n = 800
    with TestClient(app) as client:
        body = {"customer_id": "c-api", "context": {"timezone": zone_at_local_hour(12)},
                "candidates": ["flash_sale_email", "flash_sale_zalo", "live_chat_invite",
                               "no_action"]}
        answers = [client.post("/v1/recommendations", json=body).json() for _ in range(n)]
    counts = Counter(a["actions"][0]["action_id"] for a in answers)
    propensity = {a["actions"][0]["action_id"]: a["actions"][0]["propensity"] for a in answers}
    assert len(propensity) == 4
    assert_matches(counts, propensity, n)
    logged = {r.decision_id: r.actions[0].propensity for r in sink.records}
    assert all(logged[a["decision_id"]] == a["actions"][0]["propensity"] for a in answers)


def test_holdout_share_and_stability():
    ids = [f"c-{i}" for i in range(40000)]
    share = 0.1
    inside = [holdout_bucket(c, "salt-1") < share for c in ids]
    assert binomtest(sum(inside), len(ids), share).pvalue > ALPHA
    again = [holdout_bucket(c, "salt-1") < share for c in ids]
    assert inside == again
    reshuffled = [holdout_bucket(c, "salt-2") < share for c in ids]
    overlap = sum(a and b for a, b in zip(inside, reshuffled, strict=True))
    # Independent groups overlap by about share^2 of the population.
    assert binomtest(overlap, len(ids), share * share).pvalue > ALPHA


def test_holdout_customers_get_no_action_through_the_api(service_settings):
    settings = service_settings.model_copy(update={"recommender_holdout_share": 0.3})
    sink = InMemoryDecisionLog()
    app = create_app(settings, decision_log=sink, feedback_publisher=InMemoryPublisher(), seed=1)
    customers = [f"h-{i}" for i in range(400)]
    with TestClient(app) as client:
        first = {c: client.post("/v1/recommendations", json={"customer_id": c}).json()
                 for c in customers}
        second = {c: client.post("/v1/recommendations", json={"customer_id": c}).json()
                  for c in customers}
    held = [c for c in customers if first[c]["holdout"]]
    assert binomtest(len(held), len(customers), 0.3).pvalue > ALPHA
    for c in customers:
        assert second[c]["holdout"] == first[c]["holdout"]
        if first[c]["holdout"]:
            assert first[c]["actions"] == [] and first[c]["policy"] == "holdout"
        else:
            assert first[c]["actions"]
    logged_holdout = {r.customer_id for r in sink.records if r.holdout}
    assert logged_holdout == set(held)
    assert all(not r.actions for r in sink.records if r.holdout)
