"""The broker hangs (SIGSTOP) while events are ingested and consumed, then comes back."""

from __future__ import annotations

import time

import httpx

from services.ingestion.app import create_app
from services.reliability.reconcile import ScenarioResult, reconcile
from tests.faults.harness import (
    ConsumerProcess,
    EventSender,
    event,
    profile_api,
    wait_until_settled,
)
from tests.servers import serving

OUTAGE_S = 3.0


def wait_ready(base: str, since: float, timeout_s: float = 20.0) -> str:
    """How long after the broker came back the service said it was ready again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/readyz", timeout=10).status_code == 200:
            return f"200 after {time.monotonic() - since:.1f} s"
        time.sleep(0.5)
    return f"still 503 after {timeout_s:g} s"


def test_broker_hang_loses_nothing_acknowledged_and_counts_retries_once(
    isolated_broker, settings, api_key_file, fault_report,
):
    key_file, key = api_key_file
    settings = settings.model_copy(update={
        "kafka_bootstrap_servers": isolated_broker.bootstrap_servers,
        "kafka_send_timeout_s": 1.0, "kafka_request_timeout_ms": 800,
        "api_keys_file": key_file, "rate_limit_enabled": False,
        "profile_consumer_batch_size": 100,
    })
    result = ScenarioResult(
        "broker hang while ingesting and consuming",
        f"Kafka-protocol broker SIGSTOP for {OUTAGE_S:g} s, then SIGCONT; clients retry "
        "every event not answered 202")
    started = time.monotonic()
    with (serving(create_app(settings)) as base, profile_api(settings, key) as profiles,
          ConsumerProcess(settings) as consumer):
        # The scenario is about a running consumer: send once it applies a first event, so the
        # sender's budget cannot run out before the hang on a slow machine.
        warm_up = httpx.post(f"{base}/v1/events", json=event("bh-warm-up", "bh-warm-up"),
                             headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert warm_up.status_code == 202, warm_up.text
        deadline = time.monotonic() + 90
        while profiles.counted(["bh-warm-up"]) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        sender = EventSender(base, key, "bh", customers=40, per_request=5).start(threads=4)
        try:
            time.sleep(0.5)
            isolated_broker.pause()
            print(f"\ninjected: broker paused (SIGSTOP) at event {sender.next_index}")
            time.sleep(OUTAGE_S / 2)
            ready = httpx.get(f"{base}/readyz", timeout=10)
            result.extra["readyz during the hang"] = (
                f"{ready.status_code}, Retry-After {ready.headers.get('retry-after')}")
            time.sleep(OUTAGE_S / 2)
            isolated_broker.resume()
            print(f"injected: broker resumed (SIGCONT) at event {sender.next_index}")
            resumed = time.monotonic()
            time.sleep(2.0)
        finally:
            isolated_broker.resume()
            sender.stop()
        first_503 = sum(1 for o in sender.outcomes if o.status == 503)
        customers = sender.customers_used()
        before_retry = wait_until_settled(lambda: profiles.read(customers), sender.acknowledged())
        present = {e for p in before_retry.values() for e in p.event_ids}
        refused = {o.event_id for o in sender.final_outcomes().values() if o.status != 202}
        result.extra["answered 503 but stored anyway (before retry)"] = len(refused & present)
        result.extra["answered 503 on first try"] = first_503
        result.extra["retried after 503"] = sender.retry_unacknowledged()
        found = wait_until_settled(lambda: profiles.read(customers), sender.acknowledged())
        result.extra["readyz after recovery"] = wait_ready(base, resumed)
        alive = consumer.alive()
        log_tail = consumer.log_tail()
    reconcile(result, sender.outcomes, found)
    result.duration_s = round(time.monotonic() - started, 1)
    sender.close()
    fault_report.add(result)
    assert first_503 > 0, "the hang produced no 503: the fault was not injected"
    assert alive, f"the profile consumer exited during the scenario:\n{log_tail}"
    assert result.ok, f"{result.summary()}\nconsumer log:\n{log_tail}"
    assert result.acknowledged == result.events_sent  # after the retries, all are in

