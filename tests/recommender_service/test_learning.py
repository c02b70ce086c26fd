"""Joining decisions with outcomes (pure table tests), and the loop through Kafka to a model."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.cli import main as touchpoint
from services.recommender.app import create_app
from services.recommender.learning import JoinReport, join, log_from_stream
from services.recommender.registry import ModelRegistry
from shared.decisions import DecidedAction, DecisionRecord
from shared.events import EventContext, TouchpointEvent
from shared.touchpoints import load_catalog

TOUCHPOINTS = load_catalog()
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=30)


def decision(decision_id="d-1", customer="c-1", at=T0, action="flash_sale_email",
             holdout=False, policy="cold_start", propensity=0.4):
    actions = [] if holdout else [
        DecidedAction(action_id=action, rank=1, channel="email", touchpoint="email.send",
                      score=1.0, propensity=propensity),
        DecidedAction(action_id="no_action", rank=2, channel="none", touchpoint="",
                      score=0.0, propensity=0.9),
    ]
    return DecisionRecord(decision_id=decision_id, customer_id=customer, decided_at=at,
                          model_version="prior", policy=policy, holdout=holdout,
                          actions=actions, candidates=[action, "no_action", "live_chat_invite"],
                          features={"engagement_30d": 1.5, "phase": "pre_purchase",
                                    "known": True})


def event(touchpoint, at, decision_id=None, customer="c-1", event_id=None, outcome=None):
    return TouchpointEvent(
        event_id=event_id or f"e-{touchpoint}-{at.timestamp()}-{decision_id}",
        customer_id=customer, occurred_at=at, touchpoint=touchpoint,
        context=EventContext(decision_id=decision_id),
        properties={"outcome": outcome} if outcome else {},
        **({"value": 100000, "currency": "VND"} if touchpoint == "web.purchase" else {}),
    )


HOUR = timedelta(hours=1)
CASES = [
    # (name, events, expected reward of d-1 or None when no row)
    ("no outcome", [], 0.0),
    ("click", [event("email.click", T0 + HOUR, "d-1")], 1.0),
    ("open", [event("email.open", T0 + HOUR, "d-1")], 1.0),
    ("explicit feedback", [event("web.landing_page", T0 + HOUR, "d-1", outcome="replied")], 1.0),
    ("delivery report is neutral", [event("email.delivered", T0 + HOUR, "d-1")], 0.0),
    ("click then unsubscribe", [event("email.click", T0 + HOUR, "d-1"),
                                event("email.unsubscribe", T0 + 2 * HOUR, "d-1")], 0.0),
    ("outcome after the window", [event("email.click", T0 + timedelta(days=8), "d-1")], 0.0),
    ("outcome before the decision", [event("email.click", T0 - HOUR, "d-1")], 0.0),
    ("purchase within the window", [event("web.purchase", T0 + timedelta(days=3))], 1.0),
    ("purchase after the window", [event("web.purchase", T0 + timedelta(days=9))], 0.0),
    ("someone else's purchase", [event("web.purchase", T0 + HOUR, customer="c-2")], 0.0),
    ("outcome of another decision", [event("email.click", T0 + HOUR, "d-other")], 0.0),
]


@pytest.mark.parametrize(("name", "events", "reward"), CASES, ids=[c[0] for c in CASES])
def test_reward_of_a_decision(name, events, reward):
    rows = join([decision()], events, TOUCHPOINTS, LATER)
    assert len(rows) == 1
    row = rows[0]
    assert row["reward"] == reward
    assert row["action"] == "flash_sale_email" and row["propensity"] == 0.4
    assert row["actions"] == ["flash_sale_email", "no_action", "live_chat_invite"]
    assert row["context"] == {"engagement_30d": 1.5, "phase": "pre_purchase", "known": True}


def test_purchase_is_credited_to_the_latest_decision_before_it():
    decisions = [decision("d-1", at=T0), decision("d-2", at=T0 + timedelta(days=2),
                                                  action="flash_sale_zalo")]
    rows = join(decisions, [event("web.purchase", T0 + timedelta(days=3))], TOUCHPOINTS, LATER)
    assert [(r["action"], r["reward"]) for r in rows] == [("flash_sale_email", 0.0),
                                                         ("flash_sale_zalo", 1.0)]


def test_holdout_open_windows_and_duplicates():
    report = JoinReport()
    decisions = [
        decision("d-1"), decision("d-1"),  # redelivered
        decision("d-h", holdout=True),
        decision("d-open", at=LATER - timedelta(days=1)),
    ]
    click = event("email.click", T0 + HOUR, "d-1", event_id="e-1")
    rows = join(decisions, [click, click], TOUCHPOINTS, LATER, report=report)
    assert len(rows) == 1 and rows[0]["reward"] == 1.0
    assert report.decisions == 3 and report.holdout_or_empty == 1 and report.open_window == 1
    assert report.outcomes_matched == 1  # the duplicate click counted once


def test_feedback_and_decisions_through_kafka_train_a_registered_model(
    service_settings, monkeypatch, tmp_path
):
    settings = service_settings.model_copy(update={"recommender_attribution_days": 2e-5})
    app = create_app(settings, seed=9)
    with TestClient(app) as client:
        answers = []
        for i in range(240):
            answer = client.post("/v1/recommendations", json={
                "customer_id": f"c-{i}", "context": {"segment": i % 3}}).json()
            answers.append(answer)
            first = answer["actions"][0]
            if first["action_id"] != "no_action" and i % 3 == 0:
                response = client.post("/v1/feedback", json={
                    "decision_id": answer["decision_id"], "customer_id": f"c-{i}",
                    "action_id": first["action_id"], "outcome": "clicked"})
                assert response.status_code == 202, response.text
        app.state.runtime.decision_log.flush()
    time.sleep(2.0)  # let the (two-second) attribution windows close

    stream = log_from_stream(settings, datetime.now(UTC))
    assert stream.unreadable == 0
    assert stream.report.decisions == 240 and len(stream.rows) == 240
    clicked = sum(1 for i, a in enumerate(answers)
                  if i % 3 == 0 and a["actions"][0]["action_id"] != "no_action")
    assert sum(r["reward"] for r in stream.rows) == clicked > 0
    by_first = {a["actions"][0]["action_id"] for a in answers}
    assert {r["action"] for r in stream.rows} == by_first

    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TOPIC_DECISIONS": settings.topic_decisions,
        "TOPIC_TOUCHPOINTS": settings.topic_touchpoints,
        "MODEL_REGISTRY_DIR": str(settings.model_registry_dir),
        "RECOMMENDER_ATTRIBUTION_DAYS": "2e-5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert touchpoint(["train", "--out", str(tmp_path / "model")]) == 0
    versions = ModelRegistry(settings.model_registry_dir).list()
    assert [v.version for v in versions] == ["v0001"]
    assert versions[0].manifest["n_decisions"] == 240
