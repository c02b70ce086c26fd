"""The Redis store against a real Redis: the Lua path must equal the pure fold."""

from __future__ import annotations

import uuid
from dataclasses import replace

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.profiles.fold import (
    FoldedProfile,
    dedupe_id,
    epoch_ms,
    event_delta,
    fold,
    fold_all,
    merge_profiles,
    wide_dedupe_id,
)
from services.profiles.store import Outcome, ProfileStore
from shared import redis_keys as keys
from shared.touchpoints import load_catalog
from tests.profiles.state_compare import assert_same_profile
from tests.profiles.streams import T0, event
from tests.profiles.test_fold import deltas_of, streams

CATALOG = load_catalog()


@pytest.fixture
def store(redis_client, settings):
    return ProfileStore(redis_client, settings.redis_namespace, timeline_capacity=10)


def test_same_event_delivered_three_times_counts_once(store):
    delta = event_delta(event("e1", "web.purchase", value=100, currency="VND"), CATALOG, "c:c-1")
    assert store.apply([delta, delta]) == [Outcome.APPLIED, Outcome.DUPLICATE]
    assert store.apply([delta]) == [Outcome.DUPLICATE]
    state = store.read("c:c-1").state
    assert state["n"]["orders"] == 1 and state["n"]["rv:VND"] == 100 and state["n"]["ev"] == 1


def test_a_batch_goes_to_the_generation_active_when_it_is_written(store, redis_client, settings):
    first = event_delta(event("g1", "web.visit", 0), CATALOG, "c:c-1")
    assert store.apply([first]) == [Outcome.APPLIED]
    # A replay switches the active generation; the store has not looked since.
    redis_client.set(keys.generation_pointer_key(settings.redis_namespace), "r2")
    second = event_delta(event("g2", "web.visit", 1), CATALOG, "c:c-1")
    assert store.apply([second]) == [Outcome.APPLIED]
    assert store.namespace == keys.generation_namespace(settings.redis_namespace, "r2")
    assert store.read("c:c-1").state["n"]["ev"] == 1  # only the event after the switch
    old = ProfileStore(redis_client, settings.redis_namespace, generation="")
    assert old.read("c:c-1").state["n"]["ev"] == 2  # applied there too, harmlessly


def test_out_of_order_events_match_the_clean_fold(store):
    events = [event(f"e{m}", "web.visit", m) for m in (30, 10, 50, 0, 20, 40, 5)]
    deltas = [event_delta(e, CATALOG, "c:c-1") for e in events]
    store.apply(deltas)
    got = store.read("c:c-1")
    assert_same_profile(got, fold_all(deltas, timeline_capacity=10)["c:c-1"])
    assert got.state["mx"]["ls"] == epoch_ms(T0) + 50 * 60_000


# Each example writes to a namespace of its own, so sharing the client is safe.
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(streams(), st.randoms(use_true_random=False))
def test_lua_path_equals_pure_fold_under_redelivery_and_interleaving(
    redis_client, events, rnd
):
    store = ProfileStore(redis_client, f"h{uuid.uuid4().hex[:8]}", timeline_capacity=10)
    delivered = deltas_of(events)
    delivered += [rnd.choice(delivered) for _ in range(len(delivered) // 2)]
    rnd.shuffle(delivered)
    for start in range(0, len(delivered), 7):  # batches, as the consumer sends them
        store.apply(delivered[start : start + 7])
    clean = fold_all(deltas_of(events), timeline_capacity=10)
    for subject, profile in clean.items():
        assert_same_profile(store.read(subject), profile, any_order=True)


def _anon(event_id, touchpoint, minutes, anon="v-9"):
    return event_delta(event(event_id, touchpoint, minutes, customer_id=None, anonymous_id=anon),
                       CATALOG, keys.anonymous_subject(anon))


def test_identity_link_merges_history_once_and_redirects_later_events(store):
    anon_deltas = [_anon("a1", "web.visit", 0), _anon("a2", "web.product_view", 20)]
    cust_deltas = [event_delta(event("c1", "web.login", 10), CATALOG, "c:c-1")]
    store.apply(anon_deltas + cust_deltas)

    outcome = store.link("v-9", "c-1", epoch_ms(T0))
    assert outcome.merged
    assert not store.link("v-9", "c-1", epoch_ms(T0)).merged  # idempotent
    assert store.read("a:v-9") is None and store.alias_target("v-9") == "c-1"

    later = _anon("a3", "web.add_to_cart", 30)
    assert store.apply([later, anon_deltas[0]]) == [Outcome.APPLIED, Outcome.DUPLICATE]

    expected = merge_profiles(fold_all(cust_deltas, 10)["c:c-1"],
                              fold_all(anon_deltas, 10)["a:v-9"], "v-9", 10)
    expected, _ = fold(expected, replace(later, subject="c:c-1"), timeline_capacity=10)
    assert_same_profile(store.read("c:c-1"), expected)


def test_link_interrupted_after_first_step_completes_on_redelivery(store, redis_client):
    store.apply([_anon("a1", "web.visit", 0)])
    ns = store.namespace
    anon_keys = [keys.profile_key(ns, "a:v-9"), keys.timeline_key(ns, "a:v-9"),
                 keys.alias_key(ns, "a:v-9")]
    store._take(keys=anon_keys, args=["c-1"])  # the crash happens right after step 1
    assert store.apply([_anon("a2", "web.visit", 5)]) == [Outcome.APPLIED]  # redirected
    # The batch that held a1 is redelivered: a1 is still in the taken anonymous history,
    # which the customer absorbs below, so it must not be applied to the customer as well.
    assert store.apply([_anon("a1", "web.visit", 0)]) == [Outcome.DUPLICATE]
    assert store.link("v-9", "c-1", epoch_ms(T0)).merged
    state = store.read("c:c-1").state
    assert state["n"]["ev"] == 2 and state["al"] == ["v-9"]


def test_first_link_wins(store):
    store.link("v-9", "c-1", epoch_ms(T0))
    outcome = store.link("v-9", "c-2", epoch_ms(T0))
    assert not outcome.merged and outcome.conflict_with == "c-1"


def test_links_of_one_batch_equal_the_same_links_one_at_a_time(store, redis_client, settings):
    history = [_anon("a1", "web.visit", 0, "v-1"), _anon("a2", "web.visit", 5, "v-2"),
               _anon("a3", "web.product_view", 7, "v-2"),
               event_delta(event("c1", "web.login", 10), CATALOG, "c:c-1")]
    links = [("v-1", "c-1", epoch_ms(T0)), ("v-2", "c-1", epoch_ms(T0)),
             ("v-2", "c-2", epoch_ms(T0)), ("v-1", "c-1", epoch_ms(T0))]
    one_by_one = ProfileStore(redis_client, f"{settings.redis_namespace}-single",
                              timeline_capacity=10)
    store.apply(history)
    one_by_one.apply(history)

    batched = store.link_many(links)
    single = [one_by_one.link(*link) for link in links]

    assert batched == single
    assert [o.merged for o in batched] == [True, True, False, False]
    assert batched[2].conflict_with == "c-1"
    assert_same_profile(store.read("c:c-1"), one_by_one.read("c:c-1"))
    assert store.read("c:c-1").state["n"]["ev"] == 4
    assert store.read("a:v-1") is None and store.read("a:v-2") is None


def test_erasure_removes_everything_and_late_events_do_not_resurrect(store, redis_client):
    store.apply([event_delta(event("c1", "web.login", 10, anonymous_id="v-9"), CATALOG,
                             "c:c-1"), _anon("a1", "web.visit", 0)])
    store.link("v-9", "c-1", epoch_ms(T0))
    report = store.erase("c-1", epoch_ms(T0) + 3_600_000)
    assert report.existed and report.aliases == ["v-9"] and report.keys_deleted >= 2
    assert store.read("c:c-1") is None and store.alias_target("v-9") is None
    late = [event_delta(event("c2", "web.visit", 30), CATALOG, "c:c-1"), _anon("a2", "web.visit",
                                                                              40)]
    assert store.apply(late) == [Outcome.REFUSED_ERASED, Outcome.REFUSED_ERASED]
    assert store.read("c:c-1") is None and store.read("a:v-9") is None
    replayed = event_delta(event("c1", "web.login", 10), CATALOG, "c:c-1")
    assert store.apply([replayed]) == [Outcome.REFUSED_ERASED]
    after = event_delta(event("c3", "web.visit", 120), CATALOG, "c:c-1")
    assert store.apply([after]) == [Outcome.APPLIED]
    assert store.read("c:c-1").state["n"]["ev"] == 1
    leftover = [k for k in redis_client.scan_iter(match=f"{store.base}*")
                if b"erased" not in k and b"c:c-1}:" not in k]
    assert leftover == []


def test_memory_of_a_small_profile_is_measured(store):
    deltas = [event_delta(event(f"e{i}", "web.visit", i), CATALOG, "c:c-1") for i in range(5)]
    store.apply(deltas)
    assert 0 < store.memory_usage("c:c-1") < 2048
    assert isinstance(store.read("c:c-1"), FoldedProfile)


def test_apply_recovers_when_redis_forgot_the_scripts(store, redis_client):
    store.apply([event_delta(event("e1", "web.visit"), CATALOG, "c:c-1")])
    redis_client.script_flush()
    assert store.apply([event_delta(event("e2", "web.visit", 1), CATALOG, "c:c-1")]) == [
        Outcome.APPLIED]
    assert store.read("c:c-1").state["n"]["ev"] == 2


def test_lua_dedupe_window_matches_the_pure_fold(redis_client, settings):
    store = ProfileStore(redis_client, settings.redis_namespace, dedupe_capacity=16)
    deltas = [event_delta(event(f"e{i}", "web.visit", i), CATALOG, "c:c-1") for i in range(20)]
    store.apply(deltas)
    assert store.apply([deltas[-1], deltas[0]]) == [Outcome.DUPLICATE, Outcome.APPLIED]
    assert len(store.read("c:c-1").seen) == 16


def _as_earlier_version(redis_client, store, subject, event_ids=()):
    """Rewrites a subject's stored profile the way earlier versions kept it: the timeline
    in a list key of its own, not in the profile value, and the dedupe ring (of the events
    `event_ids`, in order) with 8-byte ids under `sn`."""
    ns = store.namespace
    packed = redis_client.get(keys.profile_key(ns, subject))
    raw = msgpack.unpackb(packed, raw=True, strict_map_key=False)
    lines = [line for line in raw.pop(b"tl").split(b"\n") if line]
    if event_ids:
        assert raw.pop(b"si") == b"".join(dedupe_id("e", name) for name in event_ids)
        raw[b"sn"] = b"".join(wide_dedupe_id("e", name) for name in event_ids)
    redis_client.set(keys.profile_key(ns, subject), msgpack.packb(raw, use_bin_type=False))
    if lines:
        redis_client.rpush(keys.timeline_key(ns, subject), *lines)


def test_timeline_is_kept_in_the_profile_value(store, redis_client):
    deltas = [event_delta(event(f"e{m}", "web.visit", m), CATALOG, "c:c-1") for m in (3, 1, 2)]
    store.apply(deltas)
    ns = store.namespace
    assert redis_client.exists(keys.timeline_key(ns, "c:c-1")) == 0
    raw = msgpack.unpackb(redis_client.get(keys.profile_key(ns, "c:c-1")), raw=True)
    expected = fold_all(deltas, timeline_capacity=10)["c:c-1"].timeline
    assert raw[b"tl"].decode() == "\n".join(expected)


def test_timeline_list_of_an_earlier_version_moves_into_the_profile(store, redis_client):
    first = [event_delta(event(f"e{m}", "web.visit", m), CATALOG, "c:c-1") for m in range(8)]
    store.apply(first)
    _as_earlier_version(redis_client, store, "c:c-1")
    assert store.read("c:c-1").timeline == fold_all(first, timeline_capacity=10)["c:c-1"].timeline
    later = [event_delta(event(f"l{m}", "web.product_view", m), CATALOG, "c:c-1")
             for m in (20, 4, 30)]
    store.apply(later)
    assert_same_profile(store.read("c:c-1"), fold_all(first + later, timeline_capacity=10)["c:c-1"])
    assert redis_client.exists(keys.timeline_key(store.namespace, "c:c-1")) == 0


def test_link_merges_timelines_kept_by_either_version(store, redis_client):
    cust = [event_delta(event(f"c{m}", "web.login", m), CATALOG, "c:c-1") for m in (5, 25)]
    anon = [_anon(f"a{m}", "web.visit", m) for m in (0, 10, 30)]
    store.apply(cust + anon)
    _as_earlier_version(redis_client, store, "a:v-9", ["a0", "a10", "a30"])
    _as_earlier_version(redis_client, store, "c:c-1", ["c5", "c25"])
    assert store.link("v-9", "c-1", epoch_ms(T0)).merged
    expected = merge_profiles(fold_all(cust, 10)["c:c-1"], fold_all(anon, 10)["a:v-9"], "v-9", 10)
    assert_same_profile(store.read("c:c-1"), expected)
    ns = store.namespace
    assert redis_client.exists(keys.timeline_key(ns, "c:c-1"), keys.timeline_key(ns, "a:v-9")) == 0
    raw = msgpack.unpackb(redis_client.get(keys.profile_key(ns, "c:c-1")), raw=True)
    assert b"sn" not in raw and len(raw[b"si"]) == 6 * 5
    assert store.apply(cust + anon) == [Outcome.DUPLICATE] * 5


def test_a_ring_of_8_byte_ids_still_catches_redeliveries_and_is_kept_with_6(store, redis_client):
    deltas = [event_delta(event(f"e{m}", "web.visit", m), CATALOG, "c:c-1") for m in range(3)]
    store.apply(deltas)
    _as_earlier_version(redis_client, store, "c:c-1", ["e0", "e1", "e2"])
    assert store.apply(deltas) == [Outcome.DUPLICATE] * 3
    following = event_delta(event("e9", "web.product_view", 9), CATALOG, "c:c-1")
    assert store.apply([following]) == [Outcome.APPLIED]
    raw = msgpack.unpackb(redis_client.get(keys.profile_key(store.namespace, "c:c-1")), raw=True)
    assert b"sn" not in raw
    assert raw[b"si"] == b"".join(delta.dedupe for delta in [*deltas, following])
    assert {len(delta.dedupe) for delta in deltas} == {6}
    assert_same_profile(store.read("c:c-1"), fold_all([*deltas, following], 10)["c:c-1"])


@pytest.mark.parametrize("minutes", [
    list(range(40)),                   # in order, past the cap
    list(range(40, 0, -1)),            # newest first: older lines fall outside the cap
    [7, 3, 30, 1, 31, 2, 32, 0, 33, 20, 34, 21, 35, 22, 36, 8, 37, 9, 38, 10],
])
def test_full_timeline_keeps_the_latest_lines_in_order(store, minutes):
    deltas = [event_delta(event(f"e{m}", "web.visit", m), CATALOG, "c:c-1") for m in minutes]
    for delta in deltas:  # one script call each: every insert meets a full timeline
        store.apply([delta])
    expected = fold_all(deltas, timeline_capacity=10)["c:c-1"].timeline
    assert store.read("c:c-1").timeline == expected and len(expected) == 10
