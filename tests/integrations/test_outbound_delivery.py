"""Outbound delivery for real: decisions on the real broker, state in the real Redis, and a
real HTTP subscriber on localhost that fails the first deliveries."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from kafka import KafkaProducer

from services.outbound import signing
from services.outbound.dispatcher import DecisionIntake, Deliverer, RetryPolicy, start_dispatcher
from services.outbound.messages import decision_message
from services.outbound.store import OutboundStore
from shared.decisions import DecidedAction, DecisionRecord


class Subscriber:
    """Answers 500 to the first `failures` deliveries of every message id, then 200."""

    def __init__(self, failures: int):
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.seen: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with subscriber.lock:
                    subscriber.requests.append((headers, body))
                    subscriber.seen[headers["webhook-id"]] += 1
                    failing = subscriber.seen[headers["webhook-id"]] <= subscriber.failures
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def accepted_ids(self) -> set[str]:
        with self.lock:
            return {i for i, n in self.seen.items() if n > self.failures}


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    server = Subscriber(failures=2)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def decision(decision_id: str, holdout: bool = False) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id, customer_id="c-1001", decided_at=datetime.now(UTC),
        model_version="m-1", policy="model", holdout=holdout, actions=[DecidedAction(
            action_id="email_review_request", rank=1, channel="email", touchpoint="review.request",
            score=0.3, propensity=0.8)])


def test_failing_subscriber_receives_every_message_after_retries(settings, redis_client,
                                                                 subscriber):
    settings = settings.model_copy(update={"outbound_backoff_base_s": 0.05,
                                           "outbound_backoff_max_s": 0.2,
                                           "outbound_max_attempts": 5})
    store = OutboundStore(redis_client, settings.redis_namespace)
    secret = signing.new_secret()
    sub = store.create(subscriber.url, secret, ["decision.created"], "test", time.time())
    decisions = [decision(f"d-{i}") for i in range(3)] + [decision("d-holdout", holdout=True)]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for record in decisions:
        producer.send(settings.topic_decisions, key=b"c-1001",
                      value=record.model_dump_json().encode())
    producer.flush()
    producer.close()

    stop = threading.Event()
    threads = start_dispatcher(settings, redis_client, stop, from_beginning=True, idle_s=0.05)
    expected = {decision_message(d).id for d in decisions[:3]}
    deadline = time.monotonic() + 20
    while subscriber.accepted_ids() != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    assert subscriber.accepted_ids() == expected  # every message, holdout excluded
    assert all(subscriber.seen[i] == 3 for i in expected)  # two failures, then success
    for headers, body in subscriber.requests:
        assert headers["webhook-id"] in expected  # the same id on every attempt
        assert signing.verify(secret, headers, body, int(time.time()))
    log = store.log(sub.id)
    assert sorted(item["state"] for item in log) == ["delivered"] * 3 + ["pending"] * 6
    assert {m.state for m in store.messages(sub.id)} == {"delivered"}


def test_redelivered_decisions_are_queued_once(redis_client, test_id):
    store = OutboundStore(redis_client, f"t{test_id}")
    sub = store.create("http://127.0.0.1:9/never", signing.new_secret(), ["*"], "", 0.0)
    intake = DecisionIntake(store, clock=lambda: 100.0)
    value = decision("d-1").model_dump_json().encode()
    assert intake.handle([value]) == 1
    assert intake.handle([value]) == 0  # Kafka redelivery after a crash
    assert len(store.messages(sub.id)) == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_dead_after_the_retry_budget_then_revived_by_retry(redis_client, test_id):
    store = OutboundStore(redis_client, f"t{test_id}")
    sub = store.create("https://crm.example.com/hooks", signing.new_secret(), ["*"], "", 0.0)
    clock = FakeClock()
    message = decision_message(decision("d-9"))
    store.enqueue(sub.id, message, clock())
    up = {"value": False}
    statuses: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["webhook-id"] == message.id
        status = 200 if up["value"] else 503
        statuses.append(status)
        return httpx.Response(status, headers={"retry-after": "1"})

    policy = RetryPolicy(max_attempts=3, base_s=10.0, cap_s=100.0, lease_s=30.0)
    deliverer = Deliverer(store, httpx.Client(transport=httpx.MockTransport(handler)), policy,
                          clock, unit_random=lambda: 0.0)
    for expected_next in (5.0, 10.0):  # base * 2**(n-1) * 0.5 with the random factor at 0
        assert deliverer.deliver_due() == 1
        stored = store.message(sub.id, message.id)
        assert stored.state == "pending"
        assert stored.next_at == pytest.approx(clock.now + expected_next)
        assert deliverer.deliver_due() == 0  # not due yet
        clock.now = stored.next_at
    assert deliverer.deliver_due() == 1
    assert store.message(sub.id, message.id).state == "dead"
    clock.now += 1000
    assert deliverer.deliver_due() == 0  # dead messages are not retried by themselves
    store.retry(sub.id, message.id, clock.now)
    up["value"] = True
    assert deliverer.deliver_due() == 1
    assert store.message(sub.id, message.id).state == "delivered"
    assert statuses == [503, 503, 503, 200]
    assert [e["attempt"] for e in store.log(sub.id)] == [1, 3, 2, 1]


def test_disabled_subscriptions_keep_their_messages_queued(redis_client, test_id):
    store = OutboundStore(redis_client, f"t{test_id}")
    sub = store.create("https://crm.example.com/hooks", signing.new_secret(), ["*"], "", 0.0)
    clock = FakeClock()
    message = decision_message(decision("d-5"))
    store.enqueue(sub.id, message, clock())
    store.set_disabled(sub.id, True)
    calls: list[httpx.Request] = []
    deliverer = Deliverer(store, httpx.Client(transport=httpx.MockTransport(
        lambda r: calls.append(r) or httpx.Response(200))), RetryPolicy(lease_s=30), clock)
    assert deliverer.deliver_due() == 1 and calls == []
    store.set_disabled(sub.id, False)
    clock.now += 31
    assert deliverer.deliver_due() == 1 and len(calls) == 1
    assert store.message(sub.id, message.id).state == "delivered"


def test_connection_errors_count_as_failed_attempts(redis_client, test_id):
    store = OutboundStore(redis_client, f"t{test_id}")
    sub = store.create("http://127.0.0.1:9/closed", signing.new_secret(), ["*"], "", 0.0)
    clock = FakeClock()
    store.enqueue(sub.id, decision_message(decision("d-7")), clock())

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    deliverer = Deliverer(store, httpx.Client(transport=httpx.MockTransport(refuse)),
                          RetryPolicy(max_attempts=2), clock, unit_random=lambda: 0.0)
    deliverer.deliver_due()
    [entry] = store.log(sub.id)
    assert entry["status"] is None and entry["error"].startswith("ConnectError")
