"""A consumer process killed (SIGKILL) in the middle of the stream, then restarted, ends with
exactly the state of a clean fold of the produced stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from services.devstack.lifetime import die_with_parent
from services.profiles.store import ProfileStore
from shared.settings import Settings
from shared.touchpoints import load_catalog
from tests.profiles.reference import clean_fold, produce, simulated_events
from tests.profiles.test_consumer import assert_store_matches, committed_everything, wait_for

CATALOG = load_catalog()


def _environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "REDIS_NAMESPACE": settings.redis_namespace,
        "TOPIC_TOUCHPOINTS": settings.topic_touchpoints,
        "TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "TOPIC_DECISIONS": settings.topic_decisions,
        "KAFKA_CONSUMER_GROUP": settings.kafka_consumer_group,
        "PROFILE_CONSUMER_BATCH_SIZE": "100",
        "LOG_LEVEL": "ERROR",
    })
    return env


def _start(settings: Settings) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.profiles", "consume"],
                            env=_environment(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)


def _applied(store: ProfileStore) -> int:
    return sum(1 for _ in store.subjects())


@pytest.mark.slow
def test_consumer_killed_mid_stream_and_restarted_matches_a_clean_fold(
    settings, redis_client
):
    events = simulated_events(CATALOG, customers=300, seed=11)
    produce(settings, events)
    store = ProfileStore(redis_client, settings.redis_namespace)
    check = committed_everything(settings)
    process = _start(settings)
    try:
        wait_for(lambda: _applied(store) > 20, timeout_s=60)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert not check(), "the consumer finished before it could be killed"
        killed_at = _applied(store)

        process = _start(settings)
        wait_for(lambda: _applied(store) > killed_at, timeout_s=60)
        process.send_signal(signal.SIGKILL)  # a second crash, later in the stream
        process.wait(timeout=10)

        process = _start(settings)
        wait_for(check, timeout_s=90)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        check.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert_store_matches(store, clean_fold(events, CATALOG))
