"""Outbound pure parts: Standard Webhooks signatures, backoff, stable message ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.outbound import signing
from services.outbound.backoff import retry_delay
from services.outbound.messages import decision_message, wants
from shared.decisions import DecidedAction, DecisionRecord

# The example of the Standard Webhooks reference libraries' tests
# (github.com/standard-webhooks/standard-webhooks, libraries/*/tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_reference_example():
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


VERIFY = [
    ("valid", {}, SPEC_BODY, SPEC_TS, True),
    ("one of several signatures", {"webhook-signature": "v1,AAAA " + SPEC_SIGNATURE},
     SPEC_BODY, SPEC_TS, True),
    ("tampered body", {}, b'{"test": 2432232315}', SPEC_TS, False),
    ("stale", {}, SPEC_BODY, SPEC_TS + 301, False),
    ("missing id", {"webhook-id": ""}, SPEC_BODY, SPEC_TS, False),
]


@pytest.mark.parametrize(("name", "change", "body", "now", "ok"), VERIFY,
                         ids=[v[0] for v in VERIFY])
def test_subscriber_side_verification(name, change, body, now, ok):
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS),
               "webhook-signature": SPEC_SIGNATURE, **change}
    assert signing.verify(SPEC_SECRET, headers, body, now) is ok


@pytest.mark.parametrize("secret", ["plain", "whsec_not base64!", "whsec_" + "QUFB"])
def test_bad_secrets_are_refused(secret):
    with pytest.raises(ValueError):
        signing.secret_key(secret)


def test_new_secrets_are_valid_and_distinct():
    first, second = signing.new_secret(), signing.new_secret()
    assert first != second and len(signing.secret_key(first)) == 32


BACKOFF = [
    # attempt, random, expected delay (base 2 s, cap 60 s)
    (1, 0.0, 1.0), (1, 0.999999, 2.0), (2, 0.0, 2.0), (3, 0.5, 6.0), (6, 0.0, 30.0),
    (7, 0.0, 30.0), (7, 0.999999, 60.0), (30, 0.0, 30.0),
]


@pytest.mark.parametrize(("attempt", "unit", "expected"), BACKOFF)
def test_backoff_grows_exponentially_with_bounded_jitter(attempt, unit, expected):
    assert retry_delay(attempt, 2.0, 60.0, unit) == pytest.approx(expected, rel=1e-5)


def decision(decision_id="d-1", holdout=False) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id, customer_id="c-1001",
        decided_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC), model_version="m-3",
        policy="model", holdout=holdout, actions=[DecidedAction(
            action_id="zalo_care_message", rank=1, channel="zalo", touchpoint="zalo.outreach",
            score=0.42, propensity=0.9)])


def test_message_id_is_stable_per_decision_and_body_carries_the_action():
    first, again, other = (decision_message(decision()), decision_message(decision()),
                           decision_message(decision("d-2")))
    assert first.id == again.id != other.id
    assert first.id.startswith("msg_")
    assert b'"action_id":"zalo_care_message"' in first.body
    assert b'"type":"decision.created"' in first.body


def test_event_filters():
    assert wants(["*"], "decision.created") and wants(["decision.created"], "decision.created")
    assert not wants(["profile.changed"], "decision.created")
