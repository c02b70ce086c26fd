"""The pure fold: one event's contribution, table by table, and order independence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.profiles.fold import (
    DECAY_QUANTUM,
    Delta,
    FoldedProfile,
    decision_delta,
    decode_time,
    encode_time,
    epoch_ms,
    event_delta,
    fold,
    fold_all,
    merge_profiles,
    parse_timeline_entry,
)
from shared.decisions import DecidedAction, DecisionRecord
from shared.touchpoints import load_catalog
from tests.profiles.state_compare import assert_same_profile
from tests.profiles.streams import T0, event

CATALOG = load_catalog()
SUBJECT = "c:c-1"


def one(evt) -> Delta:
    return event_delta(evt, CATALOG, SUBJECT)


def state_of(*events) -> dict:
    return fold_all([one(e) for e in events])[SUBJECT].state


MS = epoch_ms(T0)


@pytest.mark.parametrize(
    ("evt", "expected"),
    [
        (event("a", "web.visit"),
         {("n", "ev"): 1, ("n", "t:web.visit"): 1, ("mx", "ls"): MS, ("mn", "fs"): MS,
          ("mx", "lc:web"): MS}),
        (event("a", "web.purchase", value=250000, currency="VND"),
         {("n", "orders"): 1, ("n", "rv:VND"): 250000, ("n", "or:VND"): 1, ("mx", "lp"): MS,
          ("mn", "fp"): MS}),
        (event("a", "order.refunded", value=1000, currency="VND"),
         {("n", "refunds"): 1, ("n", "rv:VND"): -1000}),
        (event("a", "review.write", rating=2),
         {("n", "rs"): 2, ("n", "rn"): 1, ("lw", "rt"): [MS, None, 2]}),
        (event("a", "survey.response", nps=10),
         {("n", "ns"): 10, ("n", "nn"): 1, ("n", "npp"): 1, ("lw", "np"): [MS, None, 10]}),
        (event("a", "survey.response", nps=3), {("n", "npd"): 1}),
        (event("a", "survey.response", sentiment="negative"),
         {("n", "se:negative"): 1, ("lw", "se"): [MS, None, "negative"]}),
        (event("a", "email.unsubscribe"), {("lw", "cs:email"): [MS, None, "unsubscribe"]}),
        (event("a", "web.visit", consent={"sms": "opt_in"}),
         {("lw", "cs:sms"): [MS, None, "opt_in"]}),
        (event("a", "web.visit", context={"timezone": "Asia/Bangkok"}),
         {("lw", "tz"): [MS, None, "Asia/Bangkok"]}),
        (event("a", "email.send"), {("mx", "lo:email"): MS, ("mx", "lc:email"): None}),
        (event("a", "support.complaint"), {("bx",): [[MS, "support.complaint"]], ("mx", "lb"): MS}),
        (event("a", "support.resolved"), {("mx", "lr"): MS}),
        (event("a", "email.click", context={"decision_id": "d-1", "action_id": "winback"}),
         {("n", "dco"): 1, ("do",): [[MS, "d-1", "winback", "email.click"]]}),
        (event("a", "web.visit", channel="app"),
         {("n", "t:web.visit|app|"): 1, ("n", "t:web.visit"): None, ("mx", "lc:app"): MS}),
        (event("a", "web.visit", phase="post_purchase"),
         {("n", "t:web.visit||post_purchase"): 1}),
    ],
    ids=lambda value: value.touchpoint if hasattr(value, "touchpoint") else "",
)
def test_one_event_contributes(evt, expected):
    state = state_of(evt)
    for path, want in expected.items():
        value = state
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(want, list) and len(want) == 3 and want[1] is None:  # tie-break is a hash
            assert value[0] == want[0] and value[2] == want[2], path
        else:
            assert value == want, path


def test_decayed_counts_read_like_window_counts():
    state = state_of(event("a", "web.visit", 0), event("b", "email.open", 60 * 24 * 30))
    dc, ref = state["dc"], state["dr"]
    assert ref == MS + 30 * 86_400_000
    # Kept to 1/1024, so that the stored msgpack holds 4-byte floats.
    assert dc["30"]["*"] == pytest.approx(1 + 2.718281828 ** -1, abs=0.5 / DECAY_QUANTUM)
    assert dc["7"]["*"] == pytest.approx(1 + 2.718281828 ** (-30 / 7), abs=0.5 / DECAY_QUANTUM)
    assert dc["30"]["c:email"] == 1.0
    assert dc["30"]["s:engagement"] == 1.0
    assert all(value * DECAY_QUANTUM == int(value * DECAY_QUANTUM)
               for values in dc.values() for value in values.values())


def test_same_event_three_times_counts_once():
    delta = one(event("a", "web.purchase", value=10, currency="USD"))
    profile, counted = fold(None, delta)
    again, counted_again = fold(profile, delta)
    third, counted_third = fold(again, delta)
    assert (counted, counted_again, counted_third) == (True, False, False)
    assert third.state["n"]["orders"] == 1 and third.state["n"]["rv:USD"] == 10


def test_late_event_counts_but_last_fields_do_not_move_back():
    new = event("new", "web.visit", 60, rating=5)
    late = event("late", "web.purchase", 0, value=5, currency="USD", rating=1)
    state = state_of(new, late)
    assert state["n"]["ev"] == 2 and state["n"]["orders"] == 1
    assert state["mx"]["ls"] == MS + 3_600_000
    assert state["mn"]["fs"] == MS
    assert state["lw"]["rt"][2] == 5


def test_timeline_is_time_ordered_and_bounded():
    deltas = [one(event(f"e{i}", "web.visit", minutes=m)) for i, m in enumerate([5, 1, 9, 3, 7])]
    profile = fold_all(deltas, timeline_capacity=3)[SUBJECT]
    assert [parse_timeline_entry(x)["ms"] for x in profile.timeline] == [
        MS + m * 60_000 for m in (5, 7, 9)
    ]
    late, _ = fold(profile, one(event("old", "web.visit", minutes=0)), timeline_capacity=3)
    assert late.timeline == profile.timeline and late.state["n"]["ev"] == 6


def test_timeline_entry_keeps_context_and_round_trips():
    line = one(event("a", "web.purchase", value=99.5, currency="USD",
                     context={"campaign": "tet", "need": "gift"})).timeline_entry
    assert parse_timeline_entry(line) == {"ms": MS, "touchpoint": "web.purchase", "cp": "tet",
                                          "nd": "gift", "v": 99.5, "cu": "USD"}


def test_timeline_extras_are_name_value_parts_with_separators_escaped():
    line = one(event("a", "web.purchase", value=12.0, currency="VND",
                     context={"campaign": "tet|50%", "need": "quà\ntặng"})).timeline_entry
    assert line.endswith("|cp=tet%7C50%25|cu=VND|nd=quà%0Atặng|v=12")
    assert "\n" not in line and line.count("|") == 5
    assert parse_timeline_entry(line) == {"ms": MS, "touchpoint": "web.purchase",
                                          "cp": "tet|50%", "nd": "quà\ntặng", "v": 12,
                                          "cu": "VND"}


def test_timeline_lines_of_earlier_versions_with_json_extras_still_read():
    line = 'mz4wn6v0|web.purchase|{"cp":"tet|2027","r":4,"v":99.5}'
    assert parse_timeline_entry(line) == {"ms": decode_time("mz4wn6v0"),
                                          "touchpoint": "web.purchase",
                                          "cp": "tet|2027", "r": 4, "v": 99.5}


def test_time_encoding_sorts_as_text():
    times = [0, 35, 36, 1_800_000_000_000, 1_800_000_000_001, 2_800_000_000_000]
    encoded = [encode_time(t) for t in times]
    assert encoded == sorted(encoded) and [decode_time(x) for x in encoded] == times


def test_identity_merge_adds_counts_and_merges_timelines_once():
    cust = fold_all([one(event("c1", "web.login", 10)), one(event("c2", "web.purchase", 30,
                                                                  value=5, currency="USD"))])
    anon = fold_all([event_delta(event("a1", "web.visit", 0, customer_id=None,
                                       anonymous_id="v-9"), CATALOG, "a:v-9"),
                     event_delta(event("a2", "web.product_view", 20, customer_id=None,
                                       anonymous_id="v-9"), CATALOG, "a:v-9")])
    merged = merge_profiles(cust[SUBJECT], anon["a:v-9"], "v-9")
    assert merged.state["n"]["ev"] == 4
    assert merged.state["mn"]["fs"] == MS and merged.state["al"] == ["v-9"]
    assert [parse_timeline_entry(x)["touchpoint"] for x in merged.timeline] == [
        "web.visit", "web.login", "web.product_view", "web.purchase"]
    assert merge_profiles(merged, anon["a:v-9"], "v-9") is merged
    _, counted = fold(merged, event_delta(
        event("a1", "web.visit", 0, customer_id=None, anonymous_id="v-9"), CATALOG, SUBJECT))
    assert not counted


def _decision(holdout=False):
    return DecisionRecord(
        decision_id="d-7", customer_id="c-1", decided_at=T0, model_version="m1",
        policy="model", holdout=holdout,
        actions=[DecidedAction(action_id="winback_email", rank=1, channel="email",
                               touchpoint="email.send", score=0.4, propensity=0.8)],
    )


def test_decision_records_contacts_and_holdout_records_none():
    delta = decision_delta(_decision(), SUBJECT)
    assert delta is not None
    state = fold_all([delta])[SUBJECT].state
    assert state["oc"] == [[MS, "email", "winback_email", "d-7"]]
    assert state["n"]["oc:email"] == 1 and state["mx"]["oa:winback_email"] == MS
    assert decision_delta(_decision(holdout=True), SUBJECT) is None


# --- property: order and redelivery do not matter ----------------------------------------------

TOUCHPOINTS = ["web.visit", "web.product_view", "web.purchase", "email.send", "email.open",
               "review.write", "support.complaint", "support.resolved", "email.unsubscribe",
               "zalo.follow", "order.refunded", "delivery.failed"]


@st.composite
def streams(draw):
    """Events of a few customers with random times, values and ratings."""
    size = draw(st.integers(1, 40))
    events = []
    for index in range(size):
        touchpoint = draw(st.sampled_from(TOUCHPOINTS))
        fields = {}
        if touchpoint in ("web.purchase", "order.refunded"):
            fields = {"value": draw(st.floats(1, 1e6, allow_nan=False)), "currency": "VND"}
        if touchpoint == "review.write":
            fields = {"rating": draw(st.integers(1, 5))}
        customer = draw(st.sampled_from(["c-1", "c-2", "c-3"]))
        minutes = draw(st.integers(0, 60 * 24 * 200))
        events.append(event(f"e{index}", touchpoint, minutes, customer_id=customer, **fields))
    return events


def deltas_of(events):
    return [event_delta(e, CATALOG, f"c:{e.customer_id}") for e in events]


@settings(max_examples=150, deadline=None)
@given(streams(), st.randoms(use_true_random=False), st.integers(0, 3))
def test_fold_ignores_redelivery_and_interleaving(events, rnd, copies):
    clean = fold_all(deltas_of(events), timeline_capacity=10)
    delivered = deltas_of(events)
    delivered += [rnd.choice(delivered) for _ in range(copies * len(delivered) // 2)]
    rnd.shuffle(delivered)
    messy = fold_all(delivered, timeline_capacity=10)
    assert sorted(clean) == sorted(messy)
    for subject in clean:
        assert_same_profile(clean[subject], messy[subject], any_order=True)


def test_fold_of_empty_profile_is_the_delta_state():
    delta = one(event("a", "web.visit"))
    profile, counted = fold(FoldedProfile({}, [], []), delta)
    assert counted and profile.state == delta.state and profile.seen == [delta.dedupe]


def test_times_are_utc_epoch_ms():
    assert epoch_ms(datetime(2027, 1, 1, tzinfo=UTC)) == 1798761600000


def test_dedupe_window_is_bounded_per_profile():
    """The documented limit: ids older than the last `dedupe_capacity` are forgotten."""
    a, b, c = (one(event(name, "web.visit", i)) for i, name in enumerate("abc"))
    profile = fold_all([a, b, c], dedupe_capacity=2)[SUBJECT]
    assert fold(profile, c, dedupe_capacity=2)[1] is False
    assert fold(profile, a, dedupe_capacity=2)[1] is True
