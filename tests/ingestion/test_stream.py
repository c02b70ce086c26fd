"""HTTP -> ingestion -> Kafka (the real Kafka-protocol broker) -> a kafka-python consumer."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
import orjson

from services.ingestion.app import create_app
from tests.kafka_reading import read_topic
from tests.servers import serving


def event(**fields):
    return {"occurred_at": datetime.now(UTC).isoformat(), "touchpoint": "social.ad_click",
            **fields}


def test_event_lands_on_topic_keyed_by_customer_with_cloudevents_headers(settings):
    with serving(create_app(settings)) as base:
        response = httpx.post(f"{base}/v1/events", headers={"x-request-id": "req-42"},
                              json=event(event_id="e-1", customer_id="c-1001",
                                         context={"campaign": "flash-11", "need": "saving"}))
        assert response.status_code == 202, response.text
    [record] = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, 1)
    assert record.key == b"c-1001"
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == "e-1"
    assert headers["ce_type"] == "io.touchpoint.event.v1"
    assert headers["ce_source"] == "/touchpoint/api"
    assert headers["ce_subject"] == "c-1001"
    assert headers["request_id"] == "req-42"
    payload = orjson.loads(record.value)
    assert payload["schema_version"] == 1
    assert payload["touchpoint"] == "social.ad_click"
    assert payload["channel"] == "social" and payload["phase"] == "pre_purchase"
    assert payload["context"] == {"campaign": "flash-11", "need": "saving"}
    assert payload["received_at"]


def test_event_without_customer_is_keyed_by_anonymous_id(settings):
    with serving(create_app(settings)) as base:
        batch = {"events": [event(anonymous_id="anon-7"), event(customer_id="c-2")]}
        assert httpx.post(f"{base}/v1/events", json=batch).status_code == 202
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, 2)
    assert sorted(r.key for r in records) == [b"anon-7", b"c-2"]


def test_broker_hang_mid_stream_never_acknowledges_a_lost_event(isolated_broker, settings):
    settings = settings.model_copy(update={
        "kafka_bootstrap_servers": isolated_broker.bootstrap_servers,
        "kafka_send_timeout_s": 1.0, "kafka_request_timeout_ms": 800,
        "rate_limit_enabled": False,
    })
    outcomes: dict[str, int] = {}
    retry_after: list[str] = []
    stop = threading.Event()

    def send_stream(base: str) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                response = client.post("/v1/events", json=event(event_id=f"s-{i}",
                                                                  customer_id=f"c-{i % 7}"))
                outcomes[f"s-{i}"] = response.status_code
                if response.status_code == 503:
                    retry_after.append(response.headers.get("retry-after", ""))

    with serving(create_app(settings)) as base:
        sender = threading.Thread(target=send_stream, args=(base,))
        sender.start()
        time.sleep(1.5)
        isolated_broker.pause()
        print("injected: broker paused (SIGSTOP) for 3 s")
        time.sleep(3)
        isolated_broker.resume()
        time.sleep(2)
        stop.set()
        sender.join(timeout=30)

    acknowledged = {eid for eid, status in outcomes.items() if status == 202}
    refused = {eid for eid, status in outcomes.items() if status == 503}
    assert set(outcomes.values()) <= {202, 503}
    assert refused, "the pause should have refused some events"
    assert all(value.isdigit() for value in retry_after)
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints,
                         timeout_s=20)
    on_topic = {orjson.loads(r.value)["event_id"] for r in records}
    print(f"reconciled: {len(outcomes)} sent, {len(acknowledged)} acknowledged, "
          f"{len(refused)} refused with 503, {len(on_topic)} distinct on the topic")
    assert acknowledged <= on_topic


def test_confluent_producer_backend_is_chosen_by_setting(settings):
    settings = settings.model_copy(update={"kafka_client": "confluent"})
    app = create_app(settings)
    assert type(app.state.runtime.publisher).__name__ == "ConfluentPublisher"
    with serving(app) as base:
        response = httpx.post(f"{base}/v1/events", json=event(event_id="cf-1", customer_id="c-9"))
        assert response.status_code == 202, response.text
    [record] = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, 1)
    assert record.key == b"c-9"
    assert dict(record.headers)["ce_id"] == b"cf-1"
