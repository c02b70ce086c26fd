from datetime import UTC, datetime, time, timedelta

import pytest

from services.recommender.eligibility import (
    Contact,
    ContactPolicy,
    ProfileSnapshot,
    check_eligibility,
)
from shared.actions import load_actions

CATALOG = load_actions()
# 03:00 UTC is 10:00 in Ho Chi Minh City: outside the default quiet hours.
NOON_LOCAL = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
ALL_OPT_IN = {c: "opt_in" for c in ("email", "zalo", "messenger", "sms", "ads", "push")}


def profile(**overrides):
    base = {"phase": "purchase", "journey_step": "contact", "consent": ALL_OPT_IN}
    return ProfileSnapshot(**{**base, **overrides})


def ago(hours, action_id="abandoned_cart_zalo", channel="zalo"):
    return Contact(channel=channel, action_id=action_id, at=NOON_LOCAL - timedelta(hours=hours))


CASES = [
    # (name, action, profile, policy overrides, now, expected rule or None)
    ("eligible baseline", "abandoned_cart_zalo", profile(), {}, NOON_LOCAL, None),
    ("wrong phase", "thank_you_warranty", profile(), {}, NOON_LOCAL, "phase"),
    ("wrong step", "abandoned_cart_zalo", profile(journey_step="research"), {}, NOON_LOCAL,
     "journey_step"),
    ("unknown step does not filter", "abandoned_cart_zalo", profile(journey_step=None), {},
     NOON_LOCAL, None),
    ("service first blocks promotion", "abandoned_cart_zalo",
     profile(open_bad_experiences=("failed_delivery",)), {}, NOON_LOCAL, "service_first"),
    ("service first allows recovery", "service_recovery_callback",
     profile(open_bad_experiences=("failed_delivery",)), {}, NOON_LOCAL, None),
    ("consent missing", "abandoned_cart_zalo", profile(consent={}), {}, NOON_LOCAL, "consent"),
    ("consent opt out", "abandoned_cart_zalo", profile(consent={"zalo": "opt_out"}), {},
     NOON_LOCAL, "consent"),
    ("unsubscribed", "abandoned_cart_email", profile(consent={"email": "unsubscribe"}), {},
     NOON_LOCAL, "consent"),
    ("spam report", "abandoned_cart_email", profile(consent={"email": "spam_report"}), {},
     NOON_LOCAL, "consent"),
    ("no consent needed", "live_chat_invite", profile(consent={}), {}, NOON_LOCAL, None),
    ("cooldown active", "abandoned_cart_zalo", profile(contacts=(ago(23),)),
     {"daily_caps": {}, "default_daily_cap": None}, NOON_LOCAL, "cooldown"),
    ("cooldown over", "abandoned_cart_zalo", profile(contacts=(ago(25),)), {}, NOON_LOCAL, None),
    ("cooldown override", "abandoned_cart_zalo", profile(contacts=(ago(25),)),
     {"cooldown_overrides_hours": {"abandoned_cart_zalo": 48}}, NOON_LOCAL, "cooldown"),
    ("daily cap per channel", "flash_sale_zalo",
     profile(contacts=(ago(2, "loyalty_reward"),)), {}, NOON_LOCAL, "daily_cap"),
    ("daily cap other channel", "abandoned_cart_email",
     profile(contacts=(ago(2, "loyalty_reward"),)), {}, NOON_LOCAL, None),
    ("weekly cap", "flash_sale_zalo",
     profile(contacts=(ago(30, "x"), ago(60, "y"), ago(100, "z"))), {}, NOON_LOCAL,
     "weekly_cap"),
    ("weekly window rolls", "flash_sale_zalo",
     profile(contacts=(ago(30, "x"), ago(60, "y"), ago(24 * 7 + 1, "z"))), {}, NOON_LOCAL,
     None),
    ("default cap for unlisted channel", "free_shipping_messenger",
     profile(contacts=(ago(1, "a", "messenger"), ago(2, "b", "messenger"))), {}, NOON_LOCAL,
     "daily_cap"),
    ("cap disabled", "free_shipping_messenger",
     profile(contacts=(ago(1, "a", "messenger"), ago(2, "b", "messenger"))),
     {"default_daily_cap": None}, NOON_LOCAL, None),
    # 15:00 UTC = 22:00 in Ho Chi Minh City.
    ("quiet hours evening", "abandoned_cart_zalo", profile(), {},
     datetime(2026, 3, 2, 15, 0, tzinfo=UTC), "quiet_hours"),
    # 00:30 UTC = 07:30 local, still quiet; 01:00 UTC = 08:00 local, open.
    ("quiet hours morning", "abandoned_cart_zalo", profile(), {},
     datetime(2026, 3, 2, 0, 30, tzinfo=UTC), "quiet_hours"),
    ("quiet hours end", "abandoned_cart_zalo", profile(), {},
     datetime(2026, 3, 2, 1, 0, tzinfo=UTC), None),
    ("quiet hours use customer zone", "abandoned_cart_zalo", profile(timezone="Europe/Paris"),
     {}, datetime(2026, 3, 2, 15, 0, tzinfo=UTC), None),
    ("unknown zone falls back", "abandoned_cart_zalo", profile(timezone="Mars/Olympus"), {},
     datetime(2026, 3, 2, 15, 0, tzinfo=UTC), "quiet_hours"),
    ("on-site chat ignores quiet hours", "live_chat_invite", profile(), {},
     datetime(2026, 3, 2, 15, 0, tzinfo=UTC), None),
    ("quiet window without wrap", "abandoned_cart_zalo", profile(),
     {"quiet_start": time(9, 0), "quiet_end": time(17, 0)}, NOON_LOCAL, "quiet_hours"),
    ("quiet hours disabled", "abandoned_cart_zalo", profile(),
     {"quiet_start": time(0, 0), "quiet_end": time(0, 0)},
     datetime(2026, 3, 2, 15, 0, tzinfo=UTC), None),
]


@pytest.mark.parametrize(
    ("action_id", "snapshot", "policy_overrides", "now", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_contact_policy_rules(action_id, snapshot, policy_overrides, now, expected):
    result = check_eligibility(snapshot, [CATALOG[action_id]], ContactPolicy(**policy_overrides),
                               now)
    if expected is None:
        assert result.eligible_ids == [action_id], result.rejected
    else:
        assert result.eligible_ids == []
        assert result.rejected[action_id].rule == expected


def test_service_first_leaves_only_recovery_and_no_action():
    snapshot = profile(phase="post_purchase", journey_step="after_sales",
                       open_bad_experiences=("complaint",))
    result = check_eligibility(snapshot, CATALOG.values(), ContactPolicy(), NOON_LOCAL)
    assert set(result.eligible_ids) == {"no_action", "service_recovery_callback",
                                        "service_recovery_voucher"}
    assert all(CATALOG[a].service_recovery or a == "no_action" for a in result.eligible_ids)
    assert result.rejected["review_request"].rule == "service_first"


def test_unknown_customer_gets_actions_without_consent():
    result = check_eligibility(ProfileSnapshot(), CATALOG.values(), ContactPolicy(), NOON_LOCAL)
    assert "no_action" in result.eligible_ids
    assert all(CATALOG[a].consent is None for a in result.eligible_ids)
    assert len(result.eligible_ids) + len(result.rejected) == len(CATALOG)


def test_no_action_is_always_eligible():
    snapshot = profile(consent={}, open_bad_experiences=("complaint",))
    night = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    result = check_eligibility(snapshot, [CATALOG["no_action"]], ContactPolicy(), night)
    assert result.eligible_ids == ["no_action"]


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        check_eligibility(profile(), CATALOG.values(), ContactPolicy(), datetime(2026, 3, 2))
