"""Attribution models against hand-computed credits and independent reference implementations."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.profiles.analytics.attribution import (
    MODELS,
    AttributionResult,
    Journey,
    Touch,
    attribute_all,
    conversion_probability,
    first_touch,
    fit_markov_chain,
    last_touch,
    linear,
    markov_chain,
    position_based,
    position_based_weights,
    removal_effects,
    shapley,
    shapley_values,
    time_decay,
)

T0 = datetime(2026, 3, 1, 9, 0)


def journey(
    keys: list[str],
    converted: bool,
    value: float = 0.0,
    hours: list[float] | None = None,
    converted_after: float | None = None,
) -> Journey:
    hours = hours if hours is not None else [24.0 * i for i in range(len(keys))]
    touches = tuple(Touch(key, T0 + timedelta(hours=h)) for key, h in zip(keys, hours, strict=True))
    converted_at = T0 + timedelta(hours=converted_after) if converted_after is not None else None
    return Journey(touches, converted, value, converted_at)


# A: facebook(0h) -> email(24h) -> zalo(48h), converts at 48h for 300
# B: zalo(0h) -> facebook(12h), converts at 36h for 100
# C: email(0h), no conversion
# D: facebook(0h), converts at 0h for 50
JOURNEYS = [
    journey(["facebook", "email", "zalo"], True, 300.0, [0, 24, 48], 48),
    journey(["zalo", "facebook"], True, 100.0, [0, 12], 36),
    journey(["email"], False, hours=[0]),
    journey(["facebook"], True, 50.0, [0], 0),
]


def assert_credits(result: AttributionResult, conversions: dict, revenue: dict) -> None:
    for key, expected in conversions.items():
        assert result.conversions.get(key, 0.0) == pytest.approx(expected, abs=1e-12), key
    for key, expected in revenue.items():
        assert result.revenue.get(key, 0.0) == pytest.approx(expected, abs=1e-9), key
    assert set(result.conversions) <= set(conversions)
    assert result.total_conversions == 3
    assert result.total_revenue == 450.0


def test_first_touch_credits_the_opening_touch():
    # A -> facebook (300), B -> zalo (100), D -> facebook (50)
    assert_credits(
        first_touch(JOURNEYS),
        {"facebook": 2, "zalo": 1, "email": 0},
        {"facebook": 350, "zalo": 100, "email": 0},
    )


def test_last_touch_credits_the_closing_touch():
    # A -> zalo (300), B -> facebook (100), D -> facebook (50)
    assert_credits(
        last_touch(JOURNEYS),
        {"facebook": 2, "zalo": 1, "email": 0},
        {"facebook": 150, "zalo": 300, "email": 0},
    )


def test_linear_splits_equally_over_touches():
    # A: 1/3 each (100 each); B: 1/2 each (50 each); D: facebook 1 (50)
    # facebook 1/3 + 1/2 + 1 = 11/6, email 1/3, zalo 1/3 + 1/2 = 5/6
    assert_credits(
        linear(JOURNEYS),
        {"facebook": 11 / 6, "email": 1 / 3, "zalo": 5 / 6},
        {"facebook": 100 + 50 + 50, "email": 100, "zalo": 100 + 50},
    )


def test_time_decay_halves_weight_per_half_life_before_conversion():
    # half-life 24h. A: dt = 48, 24, 0 h -> 1/4, 1/2, 1 (sum 7/4) -> 1/7, 2/7, 4/7
    # B: converts at 36h; zalo dt 36h -> 2^-1.5, facebook dt 24h -> 2^-1
    #    zalo share 2^-1.5 / (2^-1.5 + 2^-1) = 1 / (1 + sqrt 2) = sqrt 2 - 1, facebook 2 - sqrt 2
    # D: facebook 1
    r2 = math.sqrt(2)
    assert_credits(
        time_decay(JOURNEYS, timedelta(hours=24)),
        {"facebook": 1 / 7 + (2 - r2) + 1, "email": 2 / 7, "zalo": 4 / 7 + (r2 - 1)},
        {
            "facebook": 300 / 7 + 100 * (2 - r2) + 50,
            "email": 600 / 7,
            "zalo": 1200 / 7 + 100 * (r2 - 1),
        },
    )


def test_time_decay_without_conversion_time_measures_from_last_touch():
    # touches at 0h and 24h, half-life 24h, no conversion time -> weights 1/2, 1 -> 1/3, 2/3
    result = time_decay([journey(["sms", "email"], True, 90.0, [0, 24])], timedelta(hours=24))
    assert result.conversions == pytest.approx({"email": 2 / 3, "sms": 1 / 3})
    assert result.revenue == pytest.approx({"email": 60.0, "sms": 30.0})


def test_time_decay_survives_touches_many_half_lives_before_conversion():
    # one-minute half-life, touches a year before converting: 2^-525600 underflows to 0,
    # but the shares are still 2^-1 : 2^0 between touches one minute apart
    year = 365 * 24.0
    minute = 1 / 60
    result = time_decay(
        [journey(["sms", "email"], True, 30.0, [0, minute], minute + year)],
        timedelta(minutes=1),
    )
    assert result.conversions == pytest.approx({"email": 2 / 3, "sms": 1 / 3})


def test_position_based_gives_40_20_40():
    # A: 0.4 / 0.2 / 0.4; B (two touches): 0.5 / 0.5; D (one touch): 1
    # facebook 0.4 + 0.5 + 1 = 1.9, email 0.2, zalo 0.4 + 0.5 = 0.9
    assert_credits(
        position_based(JOURNEYS),
        {"facebook": 1.9, "email": 0.2, "zalo": 0.9},
        {"facebook": 120 + 50 + 50, "email": 60, "zalo": 120 + 50},
    )


@pytest.mark.parametrize(
    ("n_touches", "first", "last", "expected"),
    [
        (1, 0.4, 0.4, [1.0]),
        (2, 0.4, 0.4, [0.5, 0.5]),
        (2, 0.3, 0.6, [1 / 3, 2 / 3]),  # middle share follows the 30:60 ratio
        (3, 0.4, 0.4, [0.4, 0.2, 0.4]),
        (5, 0.4, 0.4, [0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4]),
    ],
)
def test_position_based_weights(n_touches, first, last, expected):
    assert position_based_weights(n_touches, first, last) == pytest.approx(expected)


def test_repeated_channel_in_one_journey_accumulates_credit():
    # facebook -> email -> facebook, linear: facebook 2/3, email 1/3
    result = linear([journey(["facebook", "email", "facebook"], True, 30.0)])
    assert result.conversions == pytest.approx({"email": 1 / 3, "facebook": 2 / 3})
    assert result.revenue == pytest.approx({"email": 10.0, "facebook": 20.0})


# ---------------------------------------------------------------------------------------------
# Markov chain


def test_markov_removal_effect_on_the_three_path_example():
    # The three paths of the Markov attribution tutorial "Marketing Multi-Channel Attribution
    # model with R (part 1: Markov chains concept)", analyzecore.com, 2016-08-03:
    #   c1 > c2 > c3 > conversion,  c1 > null,  c2 > c3 > null
    # Worked by hand: start->c1 2/3, start->c2 1/3, c1->c2 1/2, c1->null 1/2, c2->c3 1,
    # c3->conv 1/2, c3->null 1/2.
    # P(conv) = (2/3 * 1/2 + 1/3) * 1 * 1/2 = 1/3
    # without c1: 1/3 * 1 * 1/2 = 1/6 -> removal effect 1 - (1/6)/(1/3) = 0.5
    # without c2 or c3 nothing reaches conversion -> removal effect 1
    # shares 0.5 : 1 : 1 -> 0.2, 0.4, 0.4 of one conversion worth 100
    paths = [
        journey(["c1", "c2", "c3"], True, 100.0),
        journey(["c1"], False),
        journey(["c2", "c3"], False),
    ]
    chain = fit_markov_chain(paths)
    assert conversion_probability(chain) == pytest.approx(1 / 3)
    assert removal_effects(chain) == pytest.approx({"c1": 0.5, "c2": 1.0, "c3": 1.0})
    result = markov_chain(paths)
    assert result.conversions == pytest.approx({"c1": 0.2, "c2": 0.4, "c3": 0.4})
    assert result.revenue == pytest.approx({"c1": 20.0, "c2": 40.0, "c3": 40.0})


def test_markov_without_conversions_gives_no_credit():
    result = markov_chain([journey(["a", "b"], False), journey(["b"], False)])
    assert result.conversions == {"a": 0.0, "b": 0.0}
    assert result.total_conversions == 0


def reference_conversion_probability(journeys: list[Journey], removed: str | None) -> float:
    """Independent check: push probability mass through the chain step by step.

    Counts transitions with plain dicts and sums the mass absorbed in conversion over all
    path lengths (path enumeration by length) instead of solving a linear system.
    """
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in journeys:
        states = ["(start)", *item.keys, "(conversion)" if item.converted else "(null)"]
        for source, target in itertools.pairwise(states):
            counts[source][target] += 1
    mass = {"(start)": 1.0}
    converted = 0.0
    for _ in range(5000):
        moved: dict[str, float] = defaultdict(float)
        for state, amount in mass.items():
            total = sum(counts[state].values())
            for target, n in counts[state].items():
                if target == removed:
                    target = "(null)"
                moved[target] += amount * n / total
        converted += moved.pop("(conversion)", 0.0)
        moved.pop("(null)", None)
        mass = moved
        if sum(mass.values()) < 1e-13:
            break
    return converted


def test_markov_linear_algebra_matches_path_enumeration_on_fixture():
    chain = fit_markov_chain(JOURNEYS)
    for removed in [None, "facebook", "email", "zalo"]:
        assert conversion_probability(chain, removed) == pytest.approx(
            reference_conversion_probability(JOURNEYS, removed), abs=1e-10
        )


# ---------------------------------------------------------------------------------------------
# Shapley


def test_shapley_values_match_published_worked_example():
    # Characteristic function and result from the worked example of "Data-driven marketing
    # attribution" (Towards Data Science; notebook "Data Driven Attribution.ipynb" in the
    # GitHub repository tomgorb/misc): v(F)=0.2, v(O)=0.1, v(L)=0.17, v(FO)=0.47, v(FL)=0.67,
    # v(LO)=0.27, v(FLO)=1.0 gives F 0.455, O 0.205, L 0.34.
    f, o, l_ = 1, 2, 4
    worth = {f: 0.2, o: 0.1, l_: 0.17, f | o: 0.47, f | l_: 0.67, l_ | o: 0.27, f | o | l_: 1.0}
    phi = shapley_values(["F", "O", "L"], worth)
    assert phi == pytest.approx({"F": 0.455, "O": 0.205, "L": 0.34})


def test_shapley_hand_computed_with_conversion_rate_per_coalition():
    # {a}: 2 journeys, 1 converts (value 10)       -> v(a)  = 0.5
    # {b}: 4 journeys, 1 converts (value 20)       -> v(b)  = 0.25
    # {a,b}: 2 journeys, both convert (80 + 40)    -> v(ab) = 1.0
    # game on {a,b}: phi_a = 1/2 (v(a) - 0) + 1/2 (v(ab) - v(b)) = 1/2 (0.5 + 0.75) = 0.625
    #                phi_b = 1/2 (v(b) - 0) + 1/2 (v(ab) - v(a)) = 1/2 (0.25 + 0.5) = 0.375
    # shares of {a,b} = phi / v(ab) = 0.625, 0.375; {a} and {b} keep their own conversions.
    # conversions: a = 1 + 2 * 0.625 = 2.25, b = 1 + 2 * 0.375 = 1.75
    # revenue:     a = 10 + 120 * 0.625 = 85, b = 20 + 120 * 0.375 = 65
    journeys = [
        journey(["a"], True, 10.0),
        journey(["a"], False),
        journey(["b"], True, 20.0),
        *[journey(["b"], False)] * 3,
        journey(["a", "b"], True, 80.0),
        journey(["b", "a"], True, 40.0),
    ]
    result = shapley(journeys)
    assert result.conversions == pytest.approx({"a": 2.25, "b": 1.75})
    assert result.revenue == pytest.approx({"a": 85.0, "b": 65.0})


def reference_shapley(journeys: list[Journey]) -> dict[str, float]:
    """Independent check: average marginal contributions over every ordering of the players."""
    seen: dict[frozenset, list[int]] = defaultdict(lambda: [0, 0])
    for item in journeys:
        seen[frozenset(item.keys)][0] += 1
        seen[frozenset(item.keys)][1] += int(item.converted)

    def rate(coalition: frozenset) -> float:
        n, conv = seen.get(coalition, (0, 0))
        return conv / n if n else 0.0

    credit: dict[str, float] = defaultdict(float)
    for coalition, (_, conv) in seen.items():
        if not conv:
            continue
        orders = list(itertools.permutations(sorted(coalition)))
        for order in orders:
            for i, player in enumerate(order):
                gain = rate(frozenset(order[: i + 1])) - rate(frozenset(order[:i]))
                credit[player] += gain / len(orders) / rate(coalition) * conv
    return dict(credit)


def test_shapley_subset_formula_matches_permutation_enumeration_on_fixture():
    assert shapley(JOURNEYS).conversions == pytest.approx(reference_shapley(JOURNEYS))


def test_shapley_refuses_more_channels_than_it_can_enumerate():
    keys = [f"channel_{i}" for i in range(16)]
    with pytest.raises(ValueError, match="at most 15"):
        shapley([journey(keys, True, 1.0)])


# ---------------------------------------------------------------------------------------------
# Input validation


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Journey((), True, 1.0), "journey.touches"),
        (lambda: journey(["a", "b"], False, hours=[5, 1]), "ordered by time"),
        (lambda: journey(["a"], False, 10.0), "converted=True"),
        (lambda: journey(["a"], True, -1.0), "journey.value"),
        (lambda: journey(["a"], True, float("nan")), "journey.value"),
        (lambda: journey(["a", "b"], True, 1.0, [0, 10], 5), "converted_at"),
        (lambda: Touch("", T0), "touch.key"),
    ],
)
def test_invalid_journeys_are_rejected_with_the_field_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_time_decay_rejects_non_positive_half_life():
    with pytest.raises(ValueError, match="half_life"):
        time_decay(JOURNEYS, timedelta(0))


# ---------------------------------------------------------------------------------------------
# Properties

CHANNELS = ["facebook", "zalo", "email", "sms", "store"]


@st.composite
def journeys_strategy(draw, max_journeys: int = 12) -> list[Journey]:
    result = []
    for _ in range(draw(st.integers(1, max_journeys))):
        keys = draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=5))
        gaps = draw(st.lists(st.integers(0, 72), min_size=len(keys), max_size=len(keys)))
        hours = list(itertools.accumulate(gaps))
        converted = draw(st.booleans())
        value = draw(st.floats(0, 1000, allow_nan=False)) if converted else 0.0
        lag = draw(st.integers(0, 48))
        converted_after = hours[-1] + lag if converted else None
        result.append(journey(keys, converted, value, hours, converted_after))
    return result


@settings(max_examples=60, deadline=None)
@given(journeys_strategy())
def test_every_model_credits_sum_to_the_totals(journeys):
    for name, result in attribute_all(journeys, timedelta(hours=24)).items():
        assert result.model == name
        assert sum(result.conversions.values()) == pytest.approx(result.total_conversions, abs=1e-9)
        assert sum(result.revenue.values()) == pytest.approx(result.total_revenue, abs=1e-6)
    assert list(attribute_all(journeys)) == list(MODELS)


@settings(max_examples=40, deadline=None)
@given(journeys_strategy(), st.permutations(CHANNELS))
def test_renaming_channels_renames_credits(journeys, renamed):
    rename = dict(zip(CHANNELS, renamed, strict=True))
    renamed_journeys = [
        Journey(
            tuple(Touch(rename[t.key], t.at) for t in item.touches),
            item.converted,
            item.value,
            item.converted_at,
        )
        for item in journeys
    ]
    before = attribute_all(journeys)
    after = attribute_all(renamed_journeys)
    for name in MODELS:
        expected = {rename[key]: credit for key, credit in before[name].conversions.items()}
        assert after[name].conversions == pytest.approx(expected, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(journeys_strategy(max_journeys=8))
def test_markov_matches_path_enumeration(journeys):
    chain = fit_markov_chain(journeys)
    for removed in [None, *chain.keys]:
        assert conversion_probability(chain, removed) == pytest.approx(
            reference_conversion_probability(journeys, removed), abs=1e-9
        )


@settings(max_examples=40, deadline=None)
@given(journeys_strategy(max_journeys=10))
def test_shapley_matches_permutation_enumeration(journeys):
    assert shapley(journeys).conversions == pytest.approx(reference_shapley(journeys), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.floats(-5, 5), min_size=2**n, max_size=2**n))
    )
)
def test_shapley_values_are_efficient(game):
    n, values = game
    worth = dict(enumerate(values))
    phi = shapley_values([f"p{i}" for i in range(n)], worth)
    assert sum(phi.values()) == pytest.approx(values[-1] - values[0], abs=1e-9)
