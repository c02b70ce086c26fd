"""Every contact-policy rule end to end: a profile in Redis, a request, the rule in the answer.

Profiles are written through the key schema in the profile service's packed shape, the way
the profile consumer leaves them (contact history included).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.recommender.app import create_app
from services.recommender.decision_log import InMemoryDecisionLog
from services.streaming.publisher import InMemoryPublisher
from tests.recommender_service.conftest import ALL_OPT_IN, profile_state, zone_at_local_hour

NOW = datetime.now(UTC)
DAY_ZONE = zone_at_local_hour(12)
NIGHT_ZONE = zone_at_local_hour(2)


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


@pytest.fixture
def client(service_settings):
    app = create_app(service_settings, decision_log=InMemoryDecisionLog(),
                     feedback_publisher=InMemoryPublisher(), seed=3)
    with TestClient(app) as test_client:
        yield test_client


def decide(client, customer_id, context=None):
    """k=10 so every eligible action can show; a None in `context` drops the default."""
    merged = {"timezone": DAY_ZONE, **(context or {})}
    body = {"customer_id": customer_id, "k": 10,
            "context": {k: v for k, v in merged.items() if v is not None}}
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 200, response.text
    return response.json()


CASES = [
    # (name, stored profile, request context, action, rule that rejects it or None)
    ("phase from orders", profile_state(consent=ALL_OPT_IN, orders=2), {},
     "abandoned_cart_email", "phase"),
    ("phase from the request", profile_state(consent=ALL_OPT_IN), {"phase": "purchase"},
     "abandoned_cart_email", None),
    ("journey step", profile_state(consent=ALL_OPT_IN), {"journey_step": "purchase"},
     "retargeting_ad", "journey_step"),
    ("consent opted out", profile_state(consent={**ALL_OPT_IN, "email": "opt_out"}), {},
     "flash_sale_email", "consent"),
    ("consent unsubscribed", profile_state(consent={**ALL_OPT_IN, "zalo": "unsubscribe"}), {},
     "flash_sale_zalo", "consent"),
    ("consent given", profile_state(consent=ALL_OPT_IN), {}, "flash_sale_email", None),
    ("cooldown", profile_state(consent=ALL_OPT_IN,
                               contacts=[(hours_ago(30), "email", "flash_sale_email")]),
     {}, "flash_sale_email", "cooldown"),
    ("cooldown over", profile_state(consent=ALL_OPT_IN,
                                    contacts=[(hours_ago(80), "email", "flash_sale_email")]),
     {}, "flash_sale_email", None),
    ("daily cap per channel", profile_state(consent=ALL_OPT_IN,
                                            contacts=[(hours_ago(2), "email", "cross_sell_email")]),
     {}, "flash_sale_email", "daily_cap"),
    ("daily cap leaves other channels", profile_state(
        consent=ALL_OPT_IN, contacts=[(hours_ago(2), "email", "cross_sell_email")]),
     {}, "flash_sale_zalo", None),
    ("weekly cap", profile_state(consent=ALL_OPT_IN, contacts=[
        (hours_ago(26), "email", "a"), (hours_ago(50), "email", "b"),
        (hours_ago(100), "email", "c")]), {}, "flash_sale_email", "weekly_cap"),
    ("weekly window rolls", profile_state(consent=ALL_OPT_IN, contacts=[
        (hours_ago(26), "email", "a"), (hours_ago(50), "email", "b"),
        (hours_ago(24 * 8), "email", "c")]), {}, "flash_sale_email", None),
    ("quiet hours in the profile's time zone",
     profile_state(consent=ALL_OPT_IN, timezone=NIGHT_ZONE), {"timezone": None},
     "flash_sale_zalo", "quiet_hours"),
    ("quiet hours spare on-site chat",
     profile_state(consent=ALL_OPT_IN, timezone=NIGHT_ZONE), {"timezone": None},
     "live_chat_invite", None),
    ("service first blocks promotions", profile_state(
        consent=ALL_OPT_IN, bad_experiences=[(hours_ago(5), "delivery.failed")]), {},
     "flash_sale_zalo", "service_first"),
    ("service first offers recovery", profile_state(
        consent=ALL_OPT_IN, bad_experiences=[(hours_ago(5), "delivery.failed")]), {},
     "service_recovery_voucher", None),
    ("resolved experience reopens promotions", profile_state(
        consent=ALL_OPT_IN, bad_experiences=[(hours_ago(5), "delivery.failed")],
        resolved_at=hours_ago(1)), {}, "flash_sale_zalo", None),
    ("recovery needs something to recover", profile_state(consent=ALL_OPT_IN), {},
     "service_recovery_callback", "service_first"),
]


@pytest.mark.parametrize(("name", "state", "context", "action", "rule"), CASES,
                         ids=[c[0] for c in CASES])
def test_contact_policy_rule(client, put_profile, name, state, context, action, rule):
    customer = f"c-{abs(hash(name)) % 10**8}"
    put_profile(customer, state)
    body = decide(client, customer, context)
    if rule is None:
        assert action not in body["rejected"], body["rejected"].get(action)
    else:
        assert body["rejected"][action].startswith(f"{rule}:"), body["rejected"].get(action)
        assert action not in {a["action_id"] for a in body["actions"]}


def test_service_first_answer_holds_only_recovery(client, put_profile):
    put_profile("c-complaint", profile_state(
        consent=ALL_OPT_IN, bad_experiences=[(hours_ago(3), "support.complaint")]))
    for _ in range(30):
        body = decide(client, "c-complaint")
        assert body["actions"]
        for action in body["actions"]:
            assert action["action_id"] in {"service_recovery_callback",
                                           "service_recovery_voucher", "no_action"}
        recovery = [a for a in body["actions"] if a["action_id"].startswith("service_recovery")]
        for action in recovery:
            assert any(r.startswith("service_first: open") for r in action["reasons"]["rules"])
