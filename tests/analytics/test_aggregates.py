"""The Lua aggregates on a real Redis: hand-counted journeys, idempotency, time decay."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import msgpack
import pytest

from services.profiles.analytics import attribution, keys
from services.profiles.analytics.costs import TouchpointCosts
from services.profiles.analytics.demo_data import demo_data
from services.profiles.analytics.facts import DecisionFacts, EventFacts
from services.profiles.analytics.keys import week_bucket
from services.profiles.analytics.reader import AnalyticsReader, ReaderConfig
from services.profiles.analytics.schemas import Filters
from services.profiles.analytics.store import (
    STATE_VERSION,
    AggregateConfig,
    AnalyticsStore,
    StateTouch,
    _script_text,
    read_customer_state,
)
from services.profiles.fold import dedupe_id, wide_dedupe_id
from shared.touchpoints import load_catalog

T0 = datetime(2027, 1, 10, 8, 0, tzinfo=UTC)
FACETS = {
    "ads.click": ("ads", "pre_purchase", "discovery"),
    "email.click": ("email", "pre_purchase", "research"),
    "zalo.message": ("zalo", "purchase", "contact"),
    "web.purchase": ("web", "purchase", "purchase"),
    "delivery.delivered": ("delivery", "post_purchase", "after_sales"),
    "survey.response": ("survey", "post_purchase", "after_sales"),
    "loyalty.redeem": ("loyalty", "post_purchase", "loyalty"),
}


def event(customer: str, n: int, hours: float, touchpoint: str, value: float = 0.0,
          rating: int | None = None, decision: str = "") -> EventFacts:
    at = T0 + timedelta(hours=hours)
    channel, phase, step = FACETS[touchpoint]
    purchase = touchpoint == "web.purchase"
    return EventFacts(
        f"{customer}-{n}", customer, int(at.timestamp() * 1000), at.date().isoformat(),
        touchpoint, channel, phase, step, purchase, value, rating, decision, True, not purchase,
    )


@pytest.fixture
def store(redis_client, test_id) -> AnalyticsStore:
    return AnalyticsStore(redis_client, f"t{test_id}", AggregateConfig(conversion_window_days=7))


def hashes(store: AnalyticsStore, name: str, day: date | str) -> dict[str, str]:
    raw = store.client.hgetall(keys.day_key(store.namespace, day, name))
    return {k.decode(): v.decode() for k, v in raw.items()}


def attribution_sums(store: AnalyticsStore, segment: str, view: str,
                     bucket: date | str) -> dict[str, float]:
    return dict(store.attribution_sums([str(bucket)], [segment], view))


def snapshot(store: AnalyticsStore) -> dict:
    out = {}
    for key in store.client.scan_iter(f"{keys.prefix(store.namespace)}:*"):
        if b":rate:" in key:
            continue
        kind = store.client.type(key)
        if kind == b"hash":
            out[key] = store.client.hgetall(key)
        elif kind == b"string":
            out[key] = store.client.get(key)
        elif kind == b"list":
            out[key] = store.client.lrange(key, 0, -1)
        elif kind == b"zset":
            out[key] = store.client.zrange(key, 0, -1, withscores=True)
    return out


def test_a_touch_converts_when_a_purchase_follows_within_the_window(store):
    c1 = [event("c1", 0, 0, "ads.click"), event("c1", 1, 24, "email.click"),
          event("c1", 2, 48, "web.purchase", value=300.0)]
    # c2 touched 9 days before buying: outside the 7-day window
    c2 = [event("c2", 0, 0, "ads.click"), event("c2", 1, 9 * 24, "web.purchase", value=50.0)]
    assert store.record(c1 + c2, [], now_s=1) == 5
    first_day = hashes(store, "tp", "2027-01-10")
    assert first_day["ads.click|ads|pre_purchase|prospect|e"] == "2"
    assert first_day["ads.click|ads|pre_purchase|prospect|c"] == "1"  # c1 only
    assert float(first_day["ads.click|ads|pre_purchase|prospect|ar"]) == 150.0  # 300 / 2
    second = hashes(store, "tp", "2027-01-11")
    assert float(second["email.click|email|pre_purchase|prospect|ar"]) == 150.0
    purchases = hashes(store, "purchases", "2027-01-12")
    assert purchases == {"prospect|n": "1", "prospect|t": "2", "prospect|r": "300"}
    late = hashes(store, "purchases", "2027-01-19")
    assert late["prospect|t"] == "0"
    # c2's journey ended (non-converted) before the late purchase
    quiet = attribution_sums(store, "prospect", "ch", "2027-01-10")
    assert quiet["ch|jn"] == 1 and "ch|jc" not in quiet
    assert quiet["ch|t|^>ads"] == 1 and quiet["ch|e|ads|n"] == 1
    converted = attribution_sums(store, "prospect", "ch", "2027-01-12")
    assert converted["ch|t|^>ads"] == 1 and converted["ch|t|ads>email"] == 1
    assert converted["ch|e|email|c"] == 1 and converted["ch|s|ads,email|c"] == 1
    assert converted["ch|m|last_touch|email|r"] == 300.0
    assert converted["ch|m|linear|ads|c"] == 0.5
    # the same sums in the week and the month of the day (the Lua and Python weeks agree)
    week = attribution_sums(store, "prospect", "ch", week_bucket(date(2027, 1, 12)))
    assert week == converted
    month = attribution_sums(store, "prospect", "ch", "2027-01")
    assert month["ch|jn"] == 2 and month["ch|t|^>ads"] == 2


def test_redelivered_events_and_decisions_count_once(store):
    data = demo_data(1500, int(T0.timestamp() * 1000), days=30, seed=3)
    store.record(data.events, data.decisions, now_s=1)
    before = snapshot(store)
    assert store.record(data.events[:700], data.decisions, now_s=1) == 0
    assert snapshot(store) == before


def test_the_same_event_twice_in_one_batch_counts_once(store):
    first = event("c-1", 1, 0, "email.click")
    assert store.record([first, first, event("c-1", 2, 1, "ads.click")], [], now_s=1) == 2


def test_the_dedupe_ring_keeps_the_latest_512_ids_of_6_bytes(store):
    events = [event("c-1", n, n / 100, "email.click") for n in range(600)]
    assert store.record(events, [], now_s=1) == 600
    state = read_customer_state(store.client, store.namespace, "c-1")
    assert state.event_ids == [dedupe_id("e", e.event_id) for e in events[-512:]]
    assert {len(event_id) for event_id in state.event_ids} == {6}
    assert store.record(events[-512:], [], now_s=1) == 0


def test_a_state_with_8_byte_ids_counts_a_redelivery_once_and_is_saved_with_6(store):
    history = [event("c-1", n, n, "email.click") for n in range(3)]
    assert store.record(history, [], now_s=1) == 3
    key = keys.customer_state_key(store.namespace, "c-1")
    _, fields, _, touches = list(msgpack.Unpacker(io.BytesIO(store.client.get(key)), raw=True))
    wide = b"".join(wide_dedupe_id("e", e.event_id) for e in history)
    store.client.set(key, b"".join(msgpack.packb(part, use_bin_type=False)
                                   for part in (1, fields, wide, touches)), ex=3600)
    earlier = read_customer_state(store.client, store.namespace, "c-1")
    assert earlier.version == 1
    assert earlier.event_ids == [dedupe_id("e", e.event_id) for e in history]
    assert store.record(history, [], now_s=1) == 0
    following = event("c-1", 3, 3, "email.click")
    assert store.record([following], [], now_s=1) == 1
    version, _, ring, _ = list(msgpack.Unpacker(io.BytesIO(store.client.get(key)), raw=True))
    assert version == STATE_VERSION
    assert ring == b"".join(dedupe_id("e", e.event_id) for e in [*history, following])


def test_a_customer_state_is_one_key_with_the_open_journey_in_arrival_order(store):
    late = event("c-1", 2, 1, "email.click")
    store.record([event("c-1", 0, 0, "ads.click"), event("c-1", 1, 3, "zalo.message"), late],
                 [], now_s=1)
    prefix = f"{keys.prefix(store.namespace)}:c:c-1:"
    assert sorted(store.client.scan_iter(prefix + "*")) == [(prefix + "st").encode()]
    state = read_customer_state(store.client, store.namespace, "c-1")
    at = int(T0.timestamp() * 1000)
    hour = 3_600_000
    day = T0.date().isoformat()
    assert state.touches == [
        StateTouch(at, "ads.click", "ads", "pre_purchase", "prospect", day),
        StateTouch(at + 3 * hour, "zalo.message", "zalo", "purchase", "prospect", day),
        StateTouch(at + hour, "email.click", "email", "pre_purchase", "prospect", day),
    ]
    assert state.fields["fd"] == day and state.fields["fc"] == "ads"
    assert state.fields["a"] == at + 3 * hour and state.fields["f"] == 0
    assert store.client.ttl(prefix + "st") > 0
    stored = list(msgpack.Unpacker(io.BytesIO(store.client.get(prefix + "st")), raw=True))
    assert stored[0] == STATE_VERSION == 2
    assert stored[3][0] == f"{base36(at)}|ads.click|ads|a|p".encode()


def test_state_kept_by_earlier_versions_moves_into_the_one_key(store):
    """Earlier versions kept a hash, an id ring and a list of touches (with their day)."""
    prefix = f"{keys.prefix(store.namespace)}:c:c-1:"
    before = event("c-1", 0, 0, "ads.click")
    store.client.hset(prefix + "s", mapping={"coh": "2027-01-10", "fch": "ads", "stg": "0",
                                             "sat": before.at_ms, "at": before.at_ms,
                                             "seg": "prospect"})
    store.client.set(prefix + "ids", wide_dedupe_id("e", before.event_id))
    store.client.rpush(prefix + "tx", f"{before.at_ms:013d}|ads.click|ads|pre_purchase|prospect|"
                                      f"{before.day}")
    purchase = event("c-1", 1, 2, "web.purchase", value=100.0)
    assert store.record([before, purchase], [], now_s=1) == 1  # the first was seen before
    assert [store.client.exists(prefix + name) for name in ("s", "ids", "tx")] == [0, 0, 0]
    state = read_customer_state(store.client, store.namespace, "c-1")
    assert state.fields["fd"] == "2027-01-10" and state.fields["f"] == 1
    assert state.event_ids == [dedupe_id("e", e.event_id) for e in (before, purchase)]
    assert state.touches == []  # the purchase converted the journey
    stats = hashes(store, "tp", before.day)
    assert stats["ads.click|ads|pre_purchase|prospect|c"] == "1"
    assert float(stats["ads.click|ads|pre_purchase|prospect|ar"]) == 100.0


def base36(n: int) -> str:
    digits = ""
    while True:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
        if n == 0:
            return digits


def unpacked(store: AnalyticsStore) -> dict:
    """The snapshot without the namespace, with each state as its msgpack objects."""
    prefix = keys.prefix(store.namespace).encode()
    return {key.removeprefix(prefix): list(msgpack.Unpacker(io.BytesIO(value), raw=True))
            if key.endswith(b":st") else value for key, value in snapshot(store).items()}


HISTORY = [("ads.click", 0), ("email.click", 1), ("web.purchase", 2), ("delivery.delivered", 30),
           ("email.click", 40), ("zalo.message", 41), ("email.click", 42)]


def earlier_layout_after_history() -> bytes:
    """The state the version before the compact layout stored for c-1 after HISTORY."""
    at = [int((T0 + timedelta(hours=hours)).timestamp() * 1000) for _, hours in HISTORY]
    fields = {"coh": "2027-01-10", "fch": "ads", "stg": "2", "sat": str(at[3]), "p": "1",
              "buy": "1", "lday": "2027-01-10", "ltp": "email.click|email", "at": str(at[6]),
              "lphase": "pre_purchase", "dphase": "5", "ljourney_step": "research",
              "djourney_step": "6"}
    ring = b"".join(wide_dedupe_id("e", f"c-1-{n}") for n in range(len(HISTORY)))
    touches = [f"{at[3]}|delivery.delivered|delivery|c|f", f"{at[4]}|email.click|email|a|f",
               f"{at[5]}|zalo.message|zalo|b|f", f"{at[6]}|email.click|email|a|f"]
    return b"".join(msgpack.packb(part, use_bin_type=False) for part in (fields, ring, touches))


@pytest.mark.parametrize("then", ["purchase", "loyalty", "quiet"])
def test_a_state_of_the_earlier_layout_counts_the_same_and_is_saved_compact(
        redis_client, test_id, then):
    clean, earlier = (
        AnalyticsStore(redis_client, f"t{test_id}{name}", AggregateConfig(conversion_window_days=7))
        for name in ("clean", "earlier"))
    history = [event("c-1", n, hours, tp, value=100.0 if tp == "web.purchase" else 0.0)
               for n, (tp, hours) in enumerate(HISTORY)]
    for store in (clean, earlier):
        assert store.record(history, [], now_s=1) == len(history)
    key = keys.customer_state_key(earlier.namespace, "c-1")
    redis_client.set(key, earlier_layout_after_history(), ex=3600)
    read = read_customer_state(redis_client, earlier.namespace, "c-1")
    assert read.version == 0
    assert read == replace(read_customer_state(redis_client, clean.namespace, "c-1"), version=0)

    following = {"purchase": event("c-1", 7, 50, "web.purchase", value=80.0),
                 "loyalty": event("c-1", 7, 50, "loyalty.redeem"),
                 "quiet": event("c-9", 0, 24 * 20, "ads.click")}[then]  # closes c-1's journey
    for store in (clean, earlier):
        assert store.record([following], [], now_s=1) == 1
        store.close_quiet_journeys()
    assert unpacked(earlier) == unpacked(clean)
    version, fields, _, touches = unpacked(earlier)[b":c:c-1:st"]
    assert version == STATE_VERSION and all(len(name) <= 2 for name in fields)
    assert isinstance(fields[b"a"], int) and b"sl" not in fields  # its column is the last
    assert all(len(touch.split(b"|")[0]) == 8 for touch in touches)


@pytest.mark.parametrize("moment", [
    datetime(1970, 1, 1, tzinfo=UTC), datetime(2024, 2, 29, 23, 59, 59, 999_000, tzinfo=UTC),
    datetime(2024, 3, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 1, 1, tzinfo=UTC), datetime(2100, 3, 1, 12, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
])
def test_the_day_of_a_touch_is_its_utc_date_and_times_and_days_are_stored_exactly(store, moment):
    script = _script_text("close_journeys").split("-- Closes journeys")[0] + """
local at = tonumber(ARGV[2])
local day = utc_day(at)
return {day, base36(at), string.format('%.0f', unbase36(base36(at))), day_number(day),
        day_text(day_number(day))}"""
    at = int(moment.timestamp() * 1000)
    day, text, back, number, day_again = store.client.eval(script, 0, store.prefix, at)
    assert day.decode() == moment.date().isoformat() == day_again.decode()
    assert text.decode() == (base36(at) if at >= 0 else "-" + base36(-at))
    assert int(back) == at and number == (moment.date() - date(1970, 1, 1)).days


def test_a_day_that_would_not_read_back_the_same_is_stored_as_text(store):
    script = _script_text("close_journeys").split("-- Closes journeys")[0]
    for day in ("2027-02-30", "2027-13-01", "27-01-10", "2027-1-10", "day"):
        assert store.client.eval(script + "\nreturn day_number(ARGV[2])", 0, store.prefix,
                                 day) == day.encode()


def test_ids_remembered_in_the_earlier_sorted_set_still_count_once(store):
    legacy = f"{keys.prefix(store.namespace)}:c:c-1:seen"
    store.client.zadd(legacy, {"c-1-1": 1})
    store.client.expire(legacy, 3600)
    again, new = event("c-1", 1, 0, "email.click"), event("c-1", 2, 1, "email.click")
    assert store.record([again, new], [], now_s=1) == 1
    assert store.record([again, new], [], now_s=1) == 0


def test_a_batch_writes_the_same_aggregates_as_one_event_at_a_time(redis_client, test_id):
    data = demo_data(400, int(T0.timestamp() * 1000), days=30, seed=11)
    one_by_one, batched = (
        AnalyticsStore(redis_client, f"t{test_id}{name}", AggregateConfig(conversion_window_days=7))
        for name in ("single", "batch"))
    for decision in data.decisions:
        one_by_one.record([], [decision], now_s=1)
    for facts in data.events:
        one_by_one.record([facts], [], now_s=1)
    assert batched.record(data.events, data.decisions, now_s=1) == (
        len(data.events) + len(data.decisions))

    def rounded(raw: bytes) -> object:
        try:
            return round(float(raw), 6)
        except ValueError:
            return raw

    def values(store: AnalyticsStore) -> dict:
        prefix = keys.prefix(store.namespace).encode()
        out = {}
        for key, value in snapshot(store).items():
            if isinstance(value, dict):  # float sums may differ in the last digits
                value = {f: rounded(v) for f, v in value.items()}
            elif key.endswith(b":st"):  # msgpack maps keep no particular order
                value = list(msgpack.Unpacker(io.BytesIO(value), raw=True))
            out[key.removeprefix(prefix)] = value
        return out

    single = values(one_by_one)
    assert len(single) > 500
    assert values(batched) == single


def test_segment_follows_the_purchases_made_before_the_event(store):
    store.record([
        event("c1", 0, 0, "ads.click"), event("c1", 1, 1, "web.purchase", value=10.0),
        event("c1", 2, 2, "email.click"), event("c1", 3, 3, "web.purchase", value=10.0),
        event("c1", 4, 4, "email.click"),
    ], [], now_s=1)
    day = hashes(store, "tp", "2027-01-10")
    assert day["ads.click|ads|pre_purchase|prospect|e"] == "1"
    assert day["email.click|email|pre_purchase|first_time_buyer|e"] == "1"
    assert day["email.click|email|pre_purchase|repeat_buyer|e"] == "1"
    assert day["web.purchase|web|purchase|prospect|p"] == "1"
    assert day["web.purchase|web|purchase|first_time_buyer|p"] == "1"


def test_funnel_stages_by_cohort_and_first_channel(store):
    store.record([
        event("c1", 0, 0, "ads.click"), event("c1", 1, 10, "web.purchase", value=10.0),
        event("c1", 2, 30, "delivery.delivered"), event("c1", 3, 100, "loyalty.redeem"),
        event("c2", 0, 0, "ads.click"), event("c2", 1, 2, "web.purchase", value=10.0),
        event("c3", 0, 5, "email.click"),
    ], [], now_s=1)
    funnel = hashes(store, "funnel", "2027-01-10")
    assert funnel["ads|0|n"] == "2" and funnel["email|0|n"] == "1"
    assert funnel["ads|1|n"] == "2" and funnel["ads|2|n"] == "1" and funnel["ads|3|n"] == "1"
    # waits 10 h (bucket 2: 6-24 h) and 2 h (bucket 1: 1-6 h) to purchase
    assert funnel["ads|1|w2"] == "1" and funnel["ads|1|w1"] == "1"
    assert float(funnel["ads|1|ws"]) == 12 * 3600


def test_drop_off_counts_each_non_buyer_once_at_the_last_touchpoint(store):
    store.record([
        event("c1", 0, 0, "ads.click"), event("c1", 1, 30, "email.click"),
        event("c2", 0, 0, "ads.click"), event("c2", 1, 1, "web.purchase", value=5.0),
    ], [], now_s=1)
    assert hashes(store, "drop", "2027-01-10") == {"ads.click|ads": "0"}
    assert hashes(store, "drop", "2027-01-11") == {"email.click|email": "1"}


def test_decision_outcomes_for_treated_and_holdout(store):
    decided = int(T0.timestamp() * 1000)
    day = T0.date().isoformat()
    decisions = [
        DecisionFacts("d1", "c1", decided, day, "zalo_reminder", "v1", False),
        DecisionFacts("d2", "c2", decided, day, "zalo_reminder", "v1", True),
        DecisionFacts("d3", "c3", decided, day, "zalo_reminder", "v1", False),
    ]
    store.record([], decisions, now_s=1)
    store.record([
        event("c1", 0, 1, "zalo.message", decision="d1"),
        event("c1", 1, 2, "web.purchase", value=100.0),
        event("c1", 2, 3, "web.purchase", value=50.0),
        event("c2", 0, 5, "web.purchase", value=40.0),  # holdout bought anyway
        event("c3", 0, 24 * 8, "web.purchase", value=70.0),  # after the window
    ], decisions, now_s=1)
    rec = hashes(store, "rec", day)
    assert rec["zalo_reminder|v1|t|n"] == "2" and rec["zalo_reminder|v1|h|n"] == "1"
    assert rec["zalo_reminder|v1|t|r"] == "1" and rec["zalo_reminder|v1|h|r"] == "1"
    assert float(rec["zalo_reminder|v1|t|v"]) == 150.0
    assert float(rec["zalo_reminder|v1|t|v2"]) == 150.0**2  # one decision with 150 in total
    assert float(rec["zalo_reminder|v1|h|v2"]) == 40.0**2


JOURNEYS = {  # customer: (hours of touches, touchpoints, purchase hour or None, value)
    "c1": ([0, 30, 100, 140], ["ads.click", "email.click", "zalo.message", "email.click"],
           150, 1000.0),
    "c2": ([0, 2], ["ads.click", "zalo.message"], 20, 300.0),
    "c3": ([5], ["email.click"], 6, 80.0),
    "c4": ([0, 1, 3], ["ads.click", "email.click", "email.click"], None, 0.0),
    "c5": ([10, 12], ["zalo.message", "ads.click"], None, 0.0),
    "c6": ([1], ["ads.click"], None, 0.0),
}


def test_every_attribution_model_over_the_aggregates_equals_the_core(store):
    events = []
    for customer, (hours, points, bought, value) in JOURNEYS.items():
        touches = enumerate(zip(hours, points, strict=True))
        events += [event(customer, i, h, tp) for i, (h, tp) in touches]
        if bought is not None:
            events.append(event(customer, 99, bought, "web.purchase", value=value))
    events.append(event("late", 0, 24 * 30, "ads.click"))  # moves time past every window
    store.record(events, [], now_s=1)
    store.close_quiet_journeys()
    journeys = [
        attribution.Journey(
            tuple(attribution.Touch(tp.split(".")[0], T0 + timedelta(hours=h))
                  for h, tp in zip(hours, points, strict=True)),
            converted=bought is not None, value=value,
        )
        for hours, points, bought, value in JOURNEYS.values()
    ]
    expected = attribution.attribute_all(journeys, timedelta(days=7))
    reader = AnalyticsReader(store, load_catalog(), TouchpointCosts(), ReaderConfig())
    filters = Filters(date_from=date(2027, 1, 1), date_to=date(2027, 1, 31))
    got = {m.model: m for m in reader.attribution(filters, "channel").models}
    for model, result in expected.items():
        assert got[model].total_conversions == 3 and got[model].total_revenue == 1380.0
        credit = {c.key: c for c in got[model].credits}
        for channel in ("ads", "email", "zalo"):
            assert credit[channel].conversions == pytest.approx(
                result.conversions.get(channel, 0.0), abs=1e-9), (model, channel)
            assert credit[channel].revenue == pytest.approx(
                result.revenue.get(channel, 0.0), abs=1e-6), (model, channel)


def test_quiet_journeys_close_in_bounded_calls(store):
    store.record([event(f"q{i}", 0, i, "ads.click") for i in range(5)], [], 1)
    assert store.quiet_journeys_waiting() == 0
    store.record([event("c9", 0, 24 * 9, "ads.click")], [], 1)  # time moves on
    assert store.quiet_journeys_waiting() == 5
    assert store.close_quiet_journeys(limit=2, max_calls=1) == 2
    assert store.close_quiet_journeys(limit=2, max_calls=1) == 2
    assert store.quiet_journeys_waiting() == 1
    assert store.close_quiet_journeys(limit=2) == 1
    assert store.close_quiet_journeys() == 0
    assert store.quiet_journeys_waiting() == 0


def test_quiet_journeys_close_as_non_converted_once_the_window_passed(store):
    store.record([event("c1", 0, 0, "ads.click"), event("c1", 1, 5, "email.click")], [], 1)
    assert store.close_quiet_journeys() == 0  # the latest event is c1's own
    store.record([event("c9", 0, 24 * 9, "ads.click")], [], 1)  # time moves on
    assert store.close_quiet_journeys() == 1
    closed = attribution_sums(store, "prospect", "ch", "2027-01-10")
    assert closed["ch|jn"] == 1 and closed["ch|t|ads>email"] == 1
    assert closed["ch|s|ads,email|n"] == 1 and "ch|jc" not in closed
    by_touchpoint = attribution_sums(store, "prospect", "tp", "2027-01-10")
    assert by_touchpoint["tp|t|ads.click>email.click"] == 1
    assert by_touchpoint["tp|e|email.click|n"] == 1


def test_attribution_sums_are_small_hashes_with_coalitions_by_code(store):
    events = []
    touches = [tp for tp in FACETS if tp != "web.purchase"]
    for n in range(1, 61):  # 60 journeys, each over a different set of touchpoints
        points = [tp for bit, tp in enumerate(touches) if n >> bit & 1]
        events += [event(f"c{n}", i, i, tp) for i, tp in enumerate(points)]
        events.append(event(f"c{n}", 99, 10, "web.purchase", value=float(n)))
    store.record(events, [], now_s=1)
    client, base = store.client, keys.day_key(store.namespace, "2027-01-10", "prospect:att:tp")
    assert not client.exists(base)
    shards = [f"{base}:{shard}" for shard in range(keys.ATTRIBUTION_SHARDS)]
    assert sum(1 for name in shards if client.exists(name)) >= keys.ATTRIBUTION_SHARDS - 1
    assert {client.object("encoding", name) for name in shards} <= {b"ziplist", b"listpack"}
    stored_codes = client.hgetall(keys.names_key(store.namespace)).items()
    codes = {name.decode(): code.decode() for name, code in stored_codes}
    assert "ads.click" in codes and "ads" in codes and len(set(codes.values())) == len(codes)
    fields = [f.decode() for name in shards for f in client.hkeys(name)]
    coded = [f for f in fields if f.startswith("tp|k|")]
    assert coded and not any("|s|" in f for f in fields)
    assert all("." not in f for f in coded)  # codes, not touchpoint names
    sums = attribution_sums(store, "prospect", "tp", "2027-01-10")
    assert sums["tp|jn"] == 60 and sums["tp|jc"] == 60
    assert sums["tp|s|ads.click|n"] == 1 and sums["tp|s|ads.click|r"] == 1.0
    assert sums["tp|s|ads.click,email.click,zalo.message|r"] == 7.0


def test_sums_written_by_earlier_versions_add_to_the_sharded_ones(store):
    day = "2027-01-10"
    legacy = keys.day_key(store.namespace, day, "prospect:att:ch")
    store.client.hset(legacy, mapping={"ch|jn": 2, "ch|jc": 1, "ch|jr": 40,
                                       "ch|s|ads,email|n": 2, "ch|s|ads,email|c": 1,
                                       "ch|s|ads,email|r": 40, "ch|t|^>ads": 2})
    store.record([event("c1", 0, 0, "ads.click"), event("c1", 1, 1, "email.click"),
                  event("c1", 2, 2, "web.purchase", value=60.0)], [], now_s=1)
    sums = attribution_sums(store, "prospect", "ch", day)
    assert sums["ch|jn"] == 3 and sums["ch|t|^>ads"] == 3
    assert sums["ch|s|ads,email|n"] == 3 and sums["ch|s|ads,email|c"] == 2
    assert sums["ch|s|ads,email|r"] == 100.0
    reader = AnalyticsReader(store, load_catalog(), TouchpointCosts(), ReaderConfig())
    answer = reader.attribution(Filters(date_from=T0.date(), date_to=T0.date()), "channel")
    assert answer.journeys == 3 and answer.converted_journeys == 2


def test_attribution_answers_are_kept_for_the_cache_time_only(store):
    now = [1000.0]
    reader = AnalyticsReader(store, load_catalog(), TouchpointCosts(),
                             ReaderConfig(attribution_cache_s=30), clock=lambda: now[0])
    filters = Filters(date_from=date(2027, 1, 1), date_to=date(2027, 1, 31))
    store.record([event("c1", 0, 0, "ads.click"),
                  event("c1", 1, 5, "web.purchase", value=10.0)], [], 1)
    first = reader.attribution(filters)
    assert first.converted_journeys == 1
    store.record([event("c2", 0, 0, "email.click"),
                  event("c2", 1, 5, "web.purchase", value=10.0)], [], 1)
    now[0] += 29
    assert reader.attribution(filters) is first
    assert reader.attribution(filters, "touchpoint").converted_journeys == 2  # another question
    now[0] += 2
    assert reader.attribution(filters).converted_journeys == 2
