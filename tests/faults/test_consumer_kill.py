"""The profile consumer is killed (SIGKILL) at random points of its batches, again and again,
while events keep arriving; a last consumer then finishes the stream."""

from __future__ import annotations

import random
import time

from services.ingestion.app import create_app
from services.reliability.reconcile import ScenarioResult, reconcile
from tests.faults.harness import ConsumerProcess, EventSender, profile_api, wait_until_settled
from tests.servers import serving

KILLS = 3
SEED = 20261123


def test_consumer_killed_mid_batch_repeatedly_counts_every_event_once(
    settings, api_key_file, fault_report,
):
    key_file, key = api_key_file
    settings = settings.model_copy(update={
        "api_keys_file": key_file, "rate_limit_enabled": False,
        "profile_consumer_batch_size": 40,  # many batches, so kills land inside them
    })
    rng = random.Random(SEED)
    result = ScenarioResult(
        "profile consumer killed mid-batch",
        f"SIGKILL of the consumer process {KILLS} times, each a random 0-400 ms after it "
        f"started applying (seed {SEED}), batches of 40, while events keep arriving")
    started = time.monotonic()
    kill_points = []
    with serving(create_app(settings)) as base, profile_api(settings, key) as profiles:
        sender = EventSender(base, key, "ck", customers=30, per_request=10).start(pause_s=0.08)
        consumer = ConsumerProcess(settings)
        try:
            for _ in range(KILLS):
                customers = sender.customers_used()
                before = profiles.counted(customers)
                consumer.start()
                deadline = time.monotonic() + 30
                while profiles.counted(customers) == before and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(rng.uniform(0, 0.4))
                consumer.kill()
                at = profiles.counted(sender.customers_used())
                kill_points.append(at)
                print(f"injected: SIGKILL of the profile consumer with {at} events applied, "
                      f"{len(sender.acknowledged())} acknowledged")
        finally:
            sender.stop()
        with consumer.start():
            customers = sender.customers_used()
            found = wait_until_settled(lambda: profiles.read(customers), sender.acknowledged(),
                                       timeout_s=60)
    result.extra["events applied when killed"] = kill_points
    reconcile(result, sender.outcomes, found)
    result.duration_s = round(time.monotonic() - started, 1)
    sender.close()
    fault_report.add(result)
    assert consumer.kills == KILLS
    assert len(set(kill_points)) > 1 or kill_points[0] < result.acknowledged
    assert result.ok, result.summary()
