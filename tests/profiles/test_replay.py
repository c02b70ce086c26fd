"""Replay rebuilds every profile into a fresh namespace and switches over."""

from __future__ import annotations

import pytest

from services.profiles.fold import epoch_ms
from services.profiles.metrics import ProfileMetrics
from services.profiles.replay import drop_namespace, replay
from services.profiles.store import ProfileStore
from shared import redis_keys as keys
from shared.touchpoints import load_catalog
from tests.profiles.reference import END, clean_fold, produce, simulated_events
from tests.profiles.test_consumer import (
    RunningConsumer,
    assert_store_matches,
    committed_everything,
    wait_for,
)

CATALOG = load_catalog()


@pytest.mark.slow
def test_replay_rebuilds_everything_switches_over_and_keeps_erasures(
    settings, redis_client
):
    events = simulated_events(CATALOG, customers=60, seed=3)
    produce(settings, events)
    store = ProfileStore(redis_client, settings.redis_namespace)
    check = committed_everything(settings)
    try:
        with RunningConsumer(settings, store, ProfileMetrics()):
            wait_for(check, timeout_s=60)
    finally:
        check.close()
    expected = clean_fold(events, CATALOG)
    erased = next(s for s in expected if not keys.is_anonymous(s))
    store.erase(keys.subject_id(erased), epoch_ms(END))
    del expected[erased]
    old_namespace = store.namespace

    seen = []
    report = replay(settings, redis_client, CATALOG, progress=lambda d, t: seen.append((d, t)),
                    settle_s=0.5)

    assert report.records == len(events) and report.previous_namespace == old_namespace
    assert seen and seen[-1][0] == len(events)
    assert store.refresh_generation() == report.namespace != old_namespace
    assert_store_matches(store, expected)  # the erased customer did not come back
    assert drop_namespace(redis_client, old_namespace, settings.redis_namespace) > 0
    assert store.tombstone(erased) is not None
