"""Journey flows, funnel and drop-out against hand-counted customers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.profiles.analytics.journeys import (
    CustomerJourney,
    DropOffTouchpoint,
    JourneyEvent,
    SankeyLink,
    dropped_out,
    funnel,
    last_touchpoints_before_drop_out,
    sankey,
    stage_times,
    transition_counts,
)

T0 = datetime(2026, 3, 1, 8, 0)
NOW = T0 + timedelta(days=30)
TWO_WEEKS = timedelta(days=14)


def event(day: float, touchpoint: str, phase: str, step: str, purchase: bool = False):
    return JourneyEvent(T0 + timedelta(days=day), touchpoint, phase, step, purchase)


def customer(customer_id: str, *events: JourneyEvent) -> CustomerJourney:
    return CustomerJourney(customer_id, tuple(events))


CUSTOMERS = [
    # buys on day 3, delivery confirmed day 5, buys again day 20 -> loyal
    customer(
        "c1",
        event(0, "facebook_ad", "pre_purchase", "discovery"),
        event(1, "website", "pre_purchase", "research"),
        event(3, "store_checkout", "purchase", "purchase", True),
        event(5, "shipping_update", "post_purchase", "confirmation"),
        event(20, "store_checkout", "purchase", "purchase", True),
    ),
    # buys on day 4, answers the survey on day 6, nothing after
    customer(
        "c2",
        event(0, "zalo_message", "pre_purchase", "need_recognition"),
        event(2, "live_chat", "purchase", "contact"),
        event(4, "website_checkout", "purchase", "purchase", True),
        event(6, "satisfaction_survey", "post_purchase", "confirmation"),
    ),
    # reads reviews, never buys, silent since day 1 -> dropped out at the review
    customer(
        "c3",
        event(0, "banner_ad", "pre_purchase", "discovery"),
        event(1, "marketplace_review", "purchase", "research"),
    ),
    # one fanpage visit on day 0 -> dropped out at the fanpage
    customer("c4", event(0, "fanpage_post", "pre_purchase", "discovery")),
    # fanpage visit on day 25, inside the two-week window -> still active
    customer("c5", event(25, "fanpage_post", "pre_purchase", "discovery")),
    # walks in and buys at once
    customer("c6", event(0, "store_checkout", "purchase", "purchase", True)),
    # fanpage visit on day 2 -> dropped out at the fanpage
    customer("c7", event(2, "fanpage_post", "pre_purchase", "discovery")),
]


def test_phase_transitions_collapse_repeats_and_count_moves():
    # c1: pre -> purchase -> post -> purchase; c2: pre -> purchase -> post; c3: pre -> purchase
    assert transition_counts(CUSTOMERS, "phase") == {
        ("pre_purchase", "purchase"): 3,
        ("purchase", "post_purchase"): 2,
        ("post_purchase", "purchase"): 1,
    }


def test_journey_step_transitions():
    # c1: discovery, research, purchase, confirmation, purchase
    # c2: need_recognition, contact, purchase, confirmation
    # c3: discovery, research
    assert transition_counts(CUSTOMERS, "journey_step") == {
        ("discovery", "research"): 2,
        ("purchase", "confirmation"): 2,
        ("research", "purchase"): 1,
        ("confirmation", "purchase"): 1,
        ("need_recognition", "contact"): 1,
        ("contact", "purchase"): 1,
    }


def test_sankey_places_revisited_phases_in_new_columns():
    diagram = sankey(CUSTOMERS, "phase")
    assert [(node.id, node.label, node.depth) for node in diagram.nodes] == [
        ("0:pre_purchase", "pre_purchase", 0),
        ("0:purchase", "purchase", 0),
        ("1:purchase", "purchase", 1),
        ("2:post_purchase", "post_purchase", 2),
        ("3:purchase", "purchase", 3),
    ]
    assert diagram.links == (
        SankeyLink("0:pre_purchase", "1:purchase", 3),
        SankeyLink("1:purchase", "2:post_purchase", 2),
        SankeyLink("2:post_purchase", "3:purchase", 1),
    )


def test_sankey_depth_limit_cuts_long_paths():
    diagram = sankey(CUSTOMERS, "phase", max_depth=2)
    assert diagram.links == (SankeyLink("0:pre_purchase", "1:purchase", 3),)
    with pytest.raises(ValueError, match="max_depth"):
        sankey(CUSTOMERS, "phase", max_depth=1)


def test_stage_times_follow_the_order_of_stages():
    c1, c2, *_ = CUSTOMERS
    assert stage_times(c1) == [T0 + timedelta(days=d) for d in (0, 3, 5, 20)]
    assert stage_times(c2) == [T0 + timedelta(days=d) for d in (0, 4, 6)]
    # post-purchase before any purchase does not count as reaching post_purchase
    early = customer(
        "c9",
        event(0, "warranty_hotline", "post_purchase", "confirmation"),
        event(1, "website_checkout", "purchase", "purchase", True),
    )
    assert stage_times(early) == [T0, T0 + timedelta(days=1)]


def test_loyalty_step_marks_a_customer_loyal_without_a_second_purchase():
    loyal = customer(
        "c10",
        event(0, "website_checkout", "purchase", "purchase", True),
        event(2, "shipping_update", "post_purchase", "confirmation"),
        event(9, "loyalty_reward", "post_purchase", "loyalty"),
    )
    assert stage_times(loyal) == [T0, T0, T0 + timedelta(days=2), T0 + timedelta(days=9)]


def test_funnel_counts_drop_off_and_median_waits():
    # pre_purchase: all 7; purchase: c1, c2, c6 -> 3 (dropped 4 of 7)
    #   waits to purchase: c1 3d, c2 4d, c6 0d -> median 3d
    # post_purchase: c1, c2 -> 2 (c6 dropped, 1 of 3); waits c1 2d, c2 2d -> median 2d
    # loyal: c1 (second purchase) -> 1 (c2 dropped, 1 of 2); wait 15d
    steps = funnel(CUSTOMERS)
    assert [s.stage for s in steps] == ["pre_purchase", "purchase", "post_purchase", "loyal"]
    assert [s.customers for s in steps] == [7, 3, 2, 1]
    assert [s.dropped_off for s in steps] == [4, 1, 1, 0]
    assert [s.drop_off_rate for s in steps] == pytest.approx([4 / 7, 1 / 3, 1 / 2, 0.0])
    assert steps[0].rate_from_previous is None
    assert [s.rate_from_previous for s in steps[1:]] == pytest.approx([3 / 7, 2 / 3, 1 / 2])
    assert [s.median_time_from_previous for s in steps] == [
        None,
        timedelta(days=3),
        timedelta(days=2),
        timedelta(days=15),
    ]


def test_funnel_of_nobody_is_empty_but_well_formed():
    steps = funnel([])
    assert [(s.customers, s.drop_off_rate, s.median_time_from_previous) for s in steps] == [
        (0, None, None)
    ] * 4


def test_last_touchpoints_before_drop_out():
    # dropped out (no purchase, silent for 14 days before day 30): c3 (review), c4, c7 (fanpage)
    # c5 is recent, c1/c2/c6 purchased
    assert last_touchpoints_before_drop_out(CUSTOMERS, NOW, TWO_WEEKS) == [
        DropOffTouchpoint("fanpage_post", 2, 2 / 3),
        DropOffTouchpoint("marketplace_review", 1, 1 / 3),
    ]
    assert last_touchpoints_before_drop_out(CUSTOMERS, NOW, TWO_WEEKS, limit=1) == [
        DropOffTouchpoint("fanpage_post", 2, 2 / 3)
    ]


def test_drop_out_window_boundary():
    # last event exactly `inactivity` before now is still inside the window
    c5 = CUSTOMERS[4]
    assert not dropped_out(c5, T0 + timedelta(days=25) + TWO_WEEKS, TWO_WEEKS)
    assert dropped_out(c5, T0 + timedelta(days=25, seconds=1) + TWO_WEEKS, TWO_WEEKS)
    with pytest.raises(ValueError, match="inactivity"):
        last_touchpoints_before_drop_out(CUSTOMERS, NOW, timedelta(0))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: event(0, "", "purchase", "purchase"), "event.touchpoint"),
        (lambda: event(0, "website", "buying", "purchase"), "event.phase"),
        (lambda: event(0, "website", "purchase", ""), "event.journey_step"),
        (lambda: customer("c1"), "journey.events"),
        (lambda: customer("", event(0, "website", "purchase", "purchase")), "customer_id"),
        (
            lambda: customer(
                "c1",
                event(2, "website", "purchase", "purchase"),
                event(1, "website", "purchase", "purchase"),
            ),
            "ordered by time",
        ),
    ],
)
def test_invalid_events_are_rejected_with_the_field_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
