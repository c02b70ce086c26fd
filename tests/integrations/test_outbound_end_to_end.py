"""The whole outbound path on the real recommender: an API decision and a complaint on the
event stream both reach a real subscriber on localhost, signed, after a failed first try."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import orjson
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from services.outbound import signing
from services.outbound.wiring import install_outbound
from services.recommender.app import create_app
from services.streaming.publisher import InMemoryPublisher
from shared.api_keys import KeyStore
from shared.events import ValidationRules, validate_event
from shared.stream import event_record
from shared.touchpoints import load_catalog
from tests.integrations.test_outbound_delivery import Subscriber

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def complaint(customer_id: str):
    return validate_event({"event_id": f"complaint-{customer_id}", "customer_id": customer_id,
                           "occurred_at": datetime.now(UTC).isoformat(),
                           "touchpoint": "support.complaint"},
                          ValidationRules(load_catalog(), datetime.now(UTC)), "api")


def test_decisions_and_triggers_reach_the_subscriber(settings, redis_client, tmp_path):
    subscriber = Subscriber(failures=1)
    server = threading.Thread(target=subscriber.server.serve_forever, daemon=True)
    server.start()
    keys = KeyStore(tmp_path / "keys.json")
    admin = keys.create("ops", ["admin"], NOW)[1]
    service = settings.model_copy(update={
        "auth_disabled": False, "rate_limit_enabled": False, "recommender_holdout_share": 0.0,
        "model_registry_dir": tmp_path / "models", "outbound_backoff_base_s": 0.05,
        "outbound_backoff_max_s": 0.2})
    app = create_app(service, feedback_publisher=InMemoryPublisher(), key_store=keys, seed=5)
    outbound = install_outbound(app, service, redis_client)
    headers = {"X-API-Key": admin}
    try:
        with TestClient(app) as client:
            client.portal.call(outbound.start, True)
            created = client.post("/v1/subscriptions", headers=headers,
                                  json={"url": subscriber.url}).json()
            decided = client.post("/v1/recommendations", headers=headers,
                                  json={"customer_id": "c-api", "k": 1})
            assert decided.status_code == 200, decided.text
            producer = KafkaProducer(bootstrap_servers=service.bootstrap_servers)
            record = event_record(complaint("c-complaint"))
            producer.send(service.topic_touchpoints, key=record.key, value=record.value,
                          headers=record.headers)
            producer.flush()
            producer.close()
            deadline = time.monotonic() + 30
            while len(subscriber.accepted_ids()) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            log = client.get(f"/v1/subscriptions/{created['id']}/deliveries",
                             headers=headers).json()
    finally:
        outbound.stop()
        subscriber.server.shutdown()
        subscriber.server.server_close()
    delivered = {}
    for request_headers, body in subscriber.requests:
        assert signing.verify(created["secret"], request_headers, body, int(time.time()))
        delivered[request_headers["webhook-id"]] = orjson.loads(body)
    assert len(subscriber.accepted_ids()) == 2
    by_customer = {m["data"]["customer_id"]: m for m in delivered.values()}
    assert by_customer["c-api"]["data"]["decision_id"] == decided.json()["decision_id"]
    assert by_customer["c-complaint"]["data"]["context"]["trigger"] == "bad_experience"
    assert {entry["state"] for entry in log} == {"pending", "delivered"}
