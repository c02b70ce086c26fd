"""Outbound webhooks to subscribers that misbehave: a real HTTP server on localhost that
times out, answers 500, or closes the connection before answering, for the first attempts of
every message; and one that always fails, whose messages must end dead, not lost."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import redis

from services.outbound import signing
from services.outbound.dispatcher import start_dispatcher
from services.outbound.messages import decision_message
from services.outbound.store import OutboundStore
from services.recommender.app import create_app as recommender_app
from services.reliability.reconcile import ScenarioResult
from shared.decisions import DecisionRecord
from tests.kafka_reading import read_topic
from tests.servers import serving

DECISIONS = 15
TIMEOUT_S = 0.3


class Subscriber:
    """Fails the first `failures` attempts of each message in `mode`, then answers 204."""

    def __init__(self, mode: str, failures: int, secret: str):
        self.mode, self.failures, self.secret = mode, failures, secret
        self.attempts: Counter[str] = Counter()
        self.acknowledged: Counter[str] = Counter()
        self.bad_signatures = 0
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                msg_id = headers.get("webhook-id", "?")
                with subscriber.lock:
                    subscriber.attempts[msg_id] += 1
                    attempt = subscriber.attempts[msg_id]
                    if not signing.verify(subscriber.secret, headers, body, int(time.time())):
                        subscriber.bad_signatures += 1
                if attempt <= subscriber.failures:
                    if subscriber.mode == "timeout":
                        time.sleep(TIMEOUT_S * 3)
                    elif subscriber.mode == "close":
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    else:
                        self.send_response(500)
                        self.send_header("content-length", "0")
                        self.end_headers()
                        return
                self.send_response(204)
                self.end_headers()
                if subscriber.mode != "timeout" or attempt > subscriber.failures:
                    with subscriber.lock:
                        subscriber.acknowledged[msg_id] += 1

        return Handler


@contextmanager
def subscriber_server(subscriber: Subscriber) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), subscriber.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    finally:
        server.shutdown()
        server.server_close()


SUBSCRIBERS = {
    # mode: (failed attempts per message, what is injected)
    "timeout": (1, f"subscriber answers after {TIMEOUT_S * 3:g} s (client timeout "
                   f"{TIMEOUT_S:g} s) on each message's first attempt"),
    "500": (2, "subscriber answers HTTP 500 to each message's first 2 attempts"),
    "close": (2, "subscriber closes the connection without answering, first 2 attempts"),
    "dead": (99, "subscriber always answers 500 (retry budget 4 attempts)"),
}


def test_misbehaving_subscribers_get_every_message_or_a_dead_letter(
    settings, api_key_file, redis_client, fault_report, tmp_path,
):
    key_file, key = api_key_file
    started = time.monotonic()
    settings = settings.model_copy(update={
        "api_keys_file": key_file, "rate_limit_enabled": False,
        "model_registry_dir": tmp_path / "models", "recommender_holdout_share": 0.0,
        "outbound_timeout_s": TIMEOUT_S, "outbound_backoff_base_s": 0.05,
        "outbound_backoff_max_s": 0.5, "outbound_max_attempts": 4,
        "outbound_consumer_group": f"outbound-{settings.redis_namespace}",
    })
    store = OutboundStore(redis_client, settings.redis_namespace)
    subscribers = {mode: Subscriber(mode, failures, signing.new_secret())
                   for mode, (failures, _) in SUBSCRIBERS.items()}
    with (subscriber_server(subscribers["timeout"]) as url_timeout,
          subscriber_server(subscribers["500"]) as url_500,
          subscriber_server(subscribers["close"]) as url_close,
          subscriber_server(subscribers["dead"]) as url_dead):
        urls = {"timeout": url_timeout, "500": url_500, "close": url_close, "dead": url_dead}
        subscriptions = {mode: store.create(urls[mode], subscribers[mode].secret, ["*"],
                                            f"{mode} subscriber", time.time())
                         for mode in SUBSCRIBERS}
        with (serving(recommender_app(settings)) as base,
              httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c):
            for i in range(DECISIONS):
                response = c.post("/v1/recommendations", json={
                    "customer_id": f"wh-c{i:03d}", "context": {"locale": "en"}})
                assert response.status_code == 200, response.text
        records = read_topic(settings.kafka_bootstrap_servers, settings.topic_decisions,
                             DECISIONS)
        decisions = [DecisionRecord.model_validate_json(r.value) for r in records]
        expected = {decision_message(d).id for d in decisions if d.actions and not d.holdout}
        print(f"\ninjected: 4 misbehaving subscribers, {len(expected)} messages each")
        stop = threading.Event()
        threads = start_dispatcher(settings, redis.Redis.from_url(settings.redis_url), stop,
                                   from_beginning=True, idle_s=0.05)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pending = sum(len(store.messages(s.id, "pending", limit=1000))
                              for s in subscriptions.values())
                queued = sum(len(store.messages(s.id, limit=1000))
                             for s in subscriptions.values())
                if queued == len(expected) * len(subscriptions) and pending == 0:
                    break
                time.sleep(0.2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
    failures: list[str] = []
    for mode, (_, injected) in SUBSCRIBERS.items():
        subscriber, sub = subscribers[mode], subscriptions[mode]
        states = Counter(m.state for m in store.messages(sub.id, limit=1000))
        result = ScenarioResult(f"webhook subscriber: {mode}", injected)
        result.events_sent = len(expected)
        if mode == "dead":
            result.acknowledged = 0
            result.in_profiles = states["dead"]
            result.missing = len(expected) - states["dead"]
            result.extra["messages"] = (f"{states['dead']} dead after 4 attempts each "
                                        f"(attempts seen {sum(subscriber.attempts.values())})")
        else:
            delivered = set(subscriber.acknowledged)
            result.acknowledged = len(delivered & expected)
            result.in_profiles = states["delivered"]
            result.missing = len(expected - delivered)
            result.duplicates = sum(n - 1 for n in subscriber.acknowledged.values())
            result.extra["messages"] = (
                f"columns count webhook messages; {sum(subscriber.attempts.values())} attempts "
                f"for {len(expected)} messages, states {dict(states)}")
        if subscriber.bad_signatures:
            result.errors.append(f"{subscriber.bad_signatures} attempt(s) with a bad signature")
        unknown = set(subscriber.attempts) - expected
        if unknown:
            result.errors.append(f"{len(unknown)} message id(s) never decided")
        result.duration_s = round(time.monotonic() - started, 1)
        fault_report.add(result)
        if not result.ok:
            failures.append(result.summary())
    assert len(expected) == DECISIONS
    assert not failures, "\n".join(failures)
