"""Attribution over path counts equals the journey-level models on the same journeys."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.profiles.analytics import attribution
from services.profiles.analytics.path_models import (
    PathCount,
    aggregates_of,
    attribute_aggregates,
    expand,
    markov_chain,
    path_counts,
    rule_based,
    shapley,
)

T0 = datetime(2027, 1, 1, 9, 0)
PATHS = [
    PathCount(("ads", "email", "zalo"), journeys=10, conversions=4, revenue=400.0),
    PathCount(("ads",), journeys=20, conversions=2, revenue=150.0),
    PathCount(("email", "email"), journeys=5, conversions=0),
    PathCount(("zalo", "store"), journeys=8, conversions=6, revenue=900.0),
    PathCount(("store",), journeys=3, conversions=1, revenue=100.0),
]


def assert_same(ours: attribution.AttributionResult, reference: attribution.AttributionResult):
    assert ours.total_conversions == reference.total_conversions
    assert ours.total_revenue == pytest.approx(reference.total_revenue)
    keys = set(ours.conversions) | set(reference.conversions)
    for key in keys:
        assert ours.conversions.get(key, 0.0) == pytest.approx(
            reference.conversions.get(key, 0.0), abs=1e-9
        ), key
        assert ours.revenue.get(key, 0.0) == pytest.approx(
            reference.revenue.get(key, 0.0), abs=1e-7
        ), key


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (lambda p: rule_based(p, "first_touch"), attribution.first_touch),
        (lambda p: rule_based(p, "last_touch"), attribution.last_touch),
        (lambda p: rule_based(p, "linear"), attribution.linear),
        (lambda p: rule_based(p, "position_based"), attribution.position_based),
        (markov_chain, attribution.markov_chain),
        (shapley, attribution.shapley),
    ],
    ids=["first_touch", "last_touch", "linear", "position_based", "markov_chain", "shapley"],
)
def test_path_counts_give_the_journey_level_result(ours, reference):
    assert_same(ours(PATHS), reference(expand(PATHS, T0)))


def test_hand_counted_last_touch():
    # converted: 4 end on zalo, 2 on ads, 6 on store, 1 on store -> zalo 4, ads 2, store 7
    result = rule_based(PATHS, "last_touch")
    assert result.conversions == {"ads": 2.0, "email": 0.0, "store": 7.0, "zalo": 4.0}
    assert result.revenue["store"] == pytest.approx(1000.0)


def test_expand_and_path_counts_round_trip():
    assert path_counts(expand(PATHS, T0)) == sorted(PATHS, key=lambda p: p.keys)


def test_the_summed_aggregates_give_every_model_of_the_core():
    reference = attribution.attribute_all(expand(PATHS, T0))
    decay = (reference["time_decay"].conversions, reference["time_decay"].revenue)
    ours = attribute_aggregates(aggregates_of(PATHS, decay))
    assert tuple(ours) == attribution.MODELS
    for model in attribution.MODELS:
        assert_same(ours[model], reference[model])


@pytest.mark.parametrize(
    "bad",
    [
        {"keys": (), "journeys": 1},
        {"keys": ("a",), "journeys": 1, "conversions": 2},
        {"keys": ("a",), "journeys": 2, "conversions": 0, "revenue": 5.0},
    ],
)
def test_path_count_rejects_impossible_counts(bad):
    with pytest.raises(ValueError):
        PathCount(**bad)


keys = st.sampled_from(["ads", "email", "zalo", "store", "web"])
path_strategy = st.builds(
    lambda ks, n, c, r: PathCount(tuple(ks), n, min(c, n), r if min(c, n) else 0.0),
    st.lists(keys, min_size=1, max_size=5), st.integers(1, 6), st.integers(0, 6),
    st.floats(0, 1000),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(path_strategy, min_size=1, max_size=6, unique_by=lambda p: p.keys))
def test_markov_and_shapley_match_the_core_on_random_counts(paths):
    journeys = expand(paths, T0)
    assert_same(markov_chain(paths), attribution.markov_chain(journeys))
    assert_same(shapley(paths), attribution.shapley(journeys))
    summed = attribute_aggregates(aggregates_of(paths))
    assert_same(summed["markov_chain"], attribution.markov_chain(journeys))
    assert_same(summed["shapley"], attribution.shapley(journeys))


def test_shapley_with_more_keys_than_fit_a_bitmask():
    # 70 keys: coalition codes become 64-bit hashes instead of exact bitmasks
    names = [f"k{i:02d}" for i in range(70)]
    paths = [
        PathCount(
            (names[i], names[(i * 7 + 3) % 70], names[(i * 11 + 5) % 70]), 4, i % 3, 10.0 * (i % 3)
        )
        for i in range(70)
    ] + [PathCount((name,), 3, 1, 5.0) for name in names]
    assert_same(shapley(paths), attribution.shapley(expand(paths, T0)))
