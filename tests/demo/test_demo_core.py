"""The demo's pure parts: routing of a simulated history, signed deliveries checked by the
ingestion service's own verifiers, and the hidden response model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import numpy as np
import orjson
import pytest

from services.demo import deliveries
from services.demo.population import build_population, customer_from, email_of, traits_of
from services.demo.response_model import (
    Decided,
    organic_purchase_probability,
    respond,
    response_probability,
)
from services.devstack.webhook_secrets import ensure_webhook_secrets, write_stack_file
from services.ingestion.webhooks import mandrill, sendgrid, shopify
from services.ingestion.webhooks.model import SignatureError
from services.simulator.journeys import JourneySimulator
from shared.touchpoints import load_catalog

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
CATALOG = load_catalog()


@pytest.fixture(scope="module")
def population():
    simulator = JourneySimulator(seed=3, start=NOW - timedelta(days=60), end=NOW)
    return build_population(simulator, 300, CATALOG, NOW)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    env: dict[str, str] = {}
    return ensure_webhook_secrets(tmp_path_factory.mktemp("stack"), env), env


def test_every_simulated_event_takes_exactly_one_route(population):
    simulator = JourneySimulator(seed=3, start=NOW - timedelta(days=60), end=NOW)
    for customer, history in zip(population, simulator.customers(300), strict=True):
        assert customer.event_count == len(history.events)
        routed = customer.api_events + customer.email_events + customer.orders
        assert sorted(e["event_id"] for e in routed) == sorted(e["event_id"]
                                                                 for e in history.events)
        assert customer.customer_id == email_of(history.customer_id)


def test_provider_routes_carry_known_customers_and_consent_stays_on_the_api(population):
    email = [e for c in population for e in c.email_events]
    orders = [e for c in population for e in c.orders]
    assert email and orders
    assert all("@" in e["customer_id"] for e in email + orders)
    assert {e["touchpoint"] for e in email} <= {"email.send", "email.open", "email.click"}
    assert {e["touchpoint"] for e in orders} == {"order.confirmation"}
    api = [e for c in population for e in c.api_events]
    assert {"email.subscribe", "zalo.follow"} & {e["touchpoint"] for e in api}
    assert all("consent" not in e for e in email + orders)


@pytest.mark.parametrize(("touchpoints", "expected"), [
    (["web.visit"], {"phase": "pre_purchase", "bad_experience_open": False}),
    (["web.add_to_cart"], {"phase": "purchase"}),
    (["web.purchase", "delivery.failed"], {"phase": "post_purchase",
                                           "bad_experience_open": True, "orders": 1}),
    (["web.purchase", "delivery.failed", "support.resolved"], {"bad_experience_open": False}),
    (["email.open", "ads.click"], {"email_engaged": True, "price_sensitive": True}),
    (["web.product_view"] * 3, {"researcher": True}),
])
def test_traits_read_the_history(touchpoints, expected):
    events = [{"touchpoint": t, "occurred_at": (NOW - timedelta(hours=10 - i)).isoformat()}
              for i, t in enumerate(touchpoints)]
    traits = traits_of(events, CATALOG, NOW)
    for name, value in expected.items():
        assert getattr(traits, name) == value, name


def test_sendgrid_delivery_passes_the_ingestion_verifier(population, secrets):
    signing, env = secrets
    events = [e for c in population for e in c.email_events][:50]
    delivery = deliveries.sendgrid_delivery(events, signing["sendgrid_private_key"], NOW)
    key = env["WEBHOOK_SENDGRID_PUBLIC_KEY"]
    sendgrid.verify(delivery.headers, delivery.body, "", key, NOW)
    with pytest.raises(SignatureError):
        sendgrid.verify(delivery.headers, delivery.body + b" ", "", key, NOW)
    mapped = sendgrid.to_events(sendgrid.parse(delivery.headers, delivery.body))
    assert [m["touchpoint"] for m in mapped] == [e["touchpoint"] for e in events]
    assert [m["customer_id"] for m in mapped] == [e["customer_id"] for e in events]


def test_mandrill_delivery_passes_the_ingestion_verifier(population, secrets):
    signing, _ = secrets
    url = "http://127.0.0.1:8001/v1/webhooks/mandrill"
    events = [e for c in population for e in c.email_events][:50]
    delivery = deliveries.mandrill_delivery(events, signing["mandrill_key"], url)
    mandrill.verify(delivery.headers, delivery.body, url, signing["mandrill_key"], NOW)
    with pytest.raises(SignatureError):
        mandrill.verify(delivery.headers, delivery.body, url + "x", signing["mandrill_key"], NOW)
    items = orjson.loads(dict(parse_qsl(delivery.body.decode()))["mandrill_events"])
    assert len(mandrill.to_events(items)) == len(events)


def test_shopify_delivery_passes_the_ingestion_verifier(population, secrets):
    signing, _ = secrets
    customer = next(c for c in population if c.orders)
    delivery = deliveries.shopify_delivery(customer.orders[0], 450000.0, "VND",
                                           signing["shopify_secret"])
    shopify.verify(delivery.headers, delivery.body, "", signing["shopify_secret"], NOW)
    (event,) = shopify.to_events(shopify.parse(delivery.headers, delivery.body))
    assert event["touchpoint"] == "order.confirmation"
    assert event["customer_id"] == customer.customer_id
    assert event["value"] == 450000.0


def test_answers_carry_the_decision_id_and_sendgrid_keeps_it(population, secrets):
    signing, _ = secrets
    customer = population[0]
    decided = Decided("d" * 32, customer.customer_id, "cross_sell_email", "email", False, NOW)
    rng = np.random.default_rng(0)
    answers = []
    while not answers or answers[0].get("properties", {}).get("outcome") != "opened":
        answers = respond(decided, customer.traits, rng, "answer")
    assert all(e["context"]["decision_id"] == "d" * 32 for e in answers
               if e["touchpoint"] != "web.purchase" or e.get("properties"))
    assert all(datetime.fromisoformat(e["occurred_at"]) > NOW for e in answers)
    opened = [e for e in answers if e["touchpoint"] == "email.open"]
    delivery = deliveries.sendgrid_delivery(opened, signing["sendgrid_private_key"], NOW)
    (mapped,) = sendgrid.to_events(sendgrid.parse(delivery.headers, delivery.body))
    assert mapped["context"]["decision_id"] == "d" * 32
    assert datetime.fromisoformat(mapped["occurred_at"]) >= NOW


def test_holdout_and_no_action_get_only_organic_purchases(population):
    rng = np.random.default_rng(1)
    for customer in population[:100]:
        for action in (None, "no_action"):
            decided = Decided("e" * 32, customer.customer_id, action, None, action is None, NOW)
            for event in respond(decided, customer.traits, rng, "x"):
                assert event["touchpoint"] == "web.purchase"
                assert "decision_id" not in event["context"]


def test_effects_are_heterogeneous(population):
    """The best action differs between customers: no single action is best for everyone."""
    actions = ["loyalty_reward", "review_request", "cross_sell_email", "thank_you_warranty",
               "referral_invite", "satisfaction_survey"]
    best = {max(actions, key=lambda a: response_probability(a, c.traits))
            for c in population if c.traits.phase == "post_purchase"
            and not c.traits.bad_experience_open}
    assert len(best) >= 3
    bad = next(c for c in population if c.traits.bad_experience_open)
    assert response_probability("service_recovery_callback", bad.traits) > \
        response_probability("flash_sale_email", bad.traits)
    assert all(0 < organic_purchase_probability(c.traits) <= 0.06 for c in population)


def test_stack_file_keeps_secrets_the_environment_does_not_set(tmp_path):
    env = {"WEBHOOK_SHOPIFY_SECRET": "from-the-environment"}
    signing = ensure_webhook_secrets(tmp_path, env)
    assert env["WEBHOOK_SHOPIFY_SECRET"] == "from-the-environment"
    assert "shopify_secret" not in signing
    assert signing["mandrill_key"] == env["WEBHOOK_MANDRILL_KEY"]
    path = write_stack_file(tmp_path, "127.0.0.1:9092", signing)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again: dict[str, str] = {}
    assert ensure_webhook_secrets(tmp_path, again)["mandrill_key"] == signing["mandrill_key"]


def test_a_customer_built_twice_is_the_same(population):
    simulator = JourneySimulator(seed=3, start=NOW - timedelta(days=60), end=NOW)
    again = customer_from(simulator.customer(5), CATALOG, NOW)
    assert again.api_events == population[5].api_events
    assert again.traits == population[5].traits


def test_provider_events_before_the_webhook_subscription_were_imported_through_the_api():
    simulator = JourneySimulator(seed=3, start=NOW - timedelta(days=60), end=NOW)
    since = NOW - timedelta(days=20)
    for history in simulator.customers(200):
        customer = customer_from(history, CATALOG, NOW, webhooks_since=since)
        everything = customer_from(history, CATALOG, NOW)
        for event in customer.email_events + customer.orders:
            assert datetime.fromisoformat(event["occurred_at"]) >= since
        moved = [e for e in everything.email_events + everything.orders
                 if datetime.fromisoformat(e["occurred_at"]) < since]
        assert all(e in customer.api_events for e in moved)
        assert customer.event_count == everything.event_count


def test_a_stopped_service_stops_the_demo_with_what_to_do():
    import asyncio

    import httpx
    from rich.console import Console
    from rich.progress import Progress

    from services.demo.session import DemoOptions, DemoSession
    from services.demo.transport import Endpoints, Http, ServiceDownError
    from shared.settings import Settings

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.port == 8003:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"status": "ok"})

    async def check() -> None:
        http = Http(Endpoints("http://127.0.0.1:8001", "http://127.0.0.1:8002",
                              "http://127.0.0.1:8003", None),
                    transport=httpx.MockTransport(handler))
        session = DemoSession(http, DemoOptions(), CATALOG, Settings(),
                              Progress(console=Console(file=None, quiet=True)))
        try:
            await session.check_services()
        finally:
            await http.aclose()

    with pytest.raises(ServiceDownError, match=r"recommender .* start it with `make run`"):
        asyncio.run(check())
