"""Redis restarted, and Redis made slow (SIGSTOP), while the profile consumer applies events and
the recommender serves decisions. The consumer must retry without loss or double counting; the
recommender must answer in bounded time, flagged `degraded` while profiles cannot be read."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import httpx
import pytest

from services.devstack.redis import EmbeddedRedis
from services.ingestion.app import create_app as ingestion_app
from services.recommender.app import create_app as recommender_app
from services.reliability.reconcile import ScenarioResult, reconcile
from tests.faults.harness import ConsumerProcess, EventSender, profile_api, wait_until_settled
from tests.servers import serving

FAULT_S = 4.0
# Nobody may wait for the fault to end: even the slowest answer stays well below its length.
# (Single slow answers happen on a busy machine: both servers and the load share a process.)
ANSWER_BOUND_S = FAULT_S * 0.75
TYPICAL_BOUND_S = 0.5  # 90% of the answers during the fault


@dataclass
class Decision:
    at: float
    status: int | None
    degraded: bool | None
    seconds: float


class RecommendationProbe:
    """Asks for recommendations in a loop and keeps each answer's status, flag and latency."""

    def __init__(self, base: str, key: str, customers: list[str]):
        self.client = httpx.Client(base_url=base, timeout=10,
                                   headers={"Authorization": f"Bearer {key}"})
        self.customers = customers
        self.answers: list[Decision] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        rng = random.Random(7)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = self.client.post("/v1/recommendations", json={
                    "customer_id": rng.choice(self.customers), "context": {"locale": "en"}})
                degraded = response.json().get("degraded") if response.status_code == 200 \
                    else None
                status = response.status_code
            except httpx.HTTPError:
                status, degraded = None, None
            self.answers.append(Decision(started, status, degraded, time.monotonic() - started))
            time.sleep(0.02)

    def __enter__(self) -> RecommendationProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.client.close()

    def between(self, start: float, end: float) -> list[Decision]:
        return [a for a in self.answers if start <= a.at < end]


def restart(server: EmbeddedRedis) -> tuple[float, float]:
    """Returns the window in which Redis was certainly down."""
    server.stop()
    down = time.monotonic()
    time.sleep(FAULT_S)
    up = time.monotonic()
    server.start()
    return down, up - 0.1


def slow_down(server: EmbeddedRedis) -> tuple[float, float]:
    server.pause()
    hung = time.monotonic()
    time.sleep(FAULT_S)
    back = time.monotonic()
    server.resume()
    # margins: SIGSTOP takes effect when the process is next scheduled, and a read sent just
    # before SIGCONT may still be answered within the recommender's timeout
    return hung + 0.2, back - 0.3


FAULTS = {
    "restart": (restart, f"Redis stopped (SIGTERM, AOF on), down {FAULT_S:g} s, started again"),
    "pause": (slow_down, f"Redis hung (SIGSTOP) for {FAULT_S:g} s, then SIGCONT"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_redis_fault_while_consuming_and_recommending(
    fault, settings, api_key_file, fault_report, tmp_path,
):
    inject, description = FAULTS[fault]
    key_file, key = api_key_file
    started = time.monotonic()
    result = ScenarioResult(f"Redis {fault} while consuming and recommending", description)
    with EmbeddedRedis(data_dir=tmp_path / "redis") as own_redis:
        settings = settings.model_copy(update={
            "redis_url": own_redis.url, "api_keys_file": key_file,
            "rate_limit_burst": 100_000, "rate_limit_per_s": 100_000,
            "model_registry_dir": tmp_path / "models", "profile_consumer_batch_size": 50,
        })
        with (serving(ingestion_app(settings)) as ingest,
              serving(recommender_app(settings)) as rec, profile_api(settings, key) as profiles,
              ConsumerProcess(settings)):
            sender = EventSender(ingest, key, f"r{fault[0]}", customers=30, per_request=5)
            sender.start(threads=2, pause_s=0.02)
            time.sleep(1.0)
            with RecommendationProbe(rec, key, sender.customers_used()) as probe:
                time.sleep(1.0)
                print(f"\ninjected: {description} (at event {sender.next_index})")
                fault_start, fault_end = inject(own_redis)
                time.sleep(2.5)
            sender.stop()
            customers = sender.customers_used()
            found = wait_until_settled(lambda: profiles.read(customers), sender.acknowledged())
    reconcile(result, sender.outcomes, found)
    during = probe.between(fault_start, fault_end)
    after = probe.between(fault_end + 1.0, float("inf"))
    slowest = max(a.seconds for a in probe.answers)
    during_s = sorted(a.seconds for a in during) or [0.0]
    p90 = during_s[int(0.9 * (len(during_s) - 1))]
    result.extra["recommendations"] = (
        f"{len(probe.answers)} requests, {sum(a.status == 200 for a in probe.answers)} answered "
        f"200, {sum(bool(a.degraded) for a in during)}/{len(during)} flagged degraded during the "
        f"fault, {sum(bool(a.degraded) for a in after)}/{len(after)} after; during the fault "
        f"p50 {during_s[len(during_s) // 2] * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms; slowest "
        f"overall {slowest * 1000:.0f} ms")
    result.duration_s = round(time.monotonic() - started, 1)
    sender.close()
    fault_report.add(result)
    assert result.ok, result.summary()
    assert all(a.status == 200 for a in probe.answers), [a for a in probe.answers
                                                          if a.status != 200][:5]
    assert slowest < ANSWER_BOUND_S
    assert p90 < TYPICAL_BOUND_S
    assert during and all(a.degraded for a in during), [a for a in during if not a.degraded]
    assert after and not any(a.degraded for a in after)
