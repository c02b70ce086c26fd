"""The profile service with its consumers in processes of their own (the default)."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.profiles.app import create_app
from shared.events import TouchpointEvent
from tests.profiles.reference import produce
from tests.profiles.test_consumer import wait_for
from tests.test_service_workers import metric_total

NOW = datetime.now(UTC).replace(microsecond=0)
SPAN = f"from={(NOW - timedelta(days=2)).date()}&to={(NOW + timedelta(days=1)).date()}"


def _purchase(event_id: str) -> TouchpointEvent:
    return TouchpointEvent(event_id=event_id, customer_id="c-1", occurred_at=NOW,
                           touchpoint="web.purchase", value=90000, currency="VND")


def _thread_niceness(pid: int) -> set[int]:
    return {os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def _ready(client: TestClient) -> bool:
    return client.get("/readyz").status_code == 200


@pytest.mark.slow
def test_consumer_processes_fold_report_metrics_and_come_back_after_a_kill(settings):
    settings = settings.model_copy(update={
        "profile_consumer_processes": 1,
        "analytics_consumer_group": f"a-{settings.redis_namespace}"})
    app = create_app(settings)
    with TestClient(app) as client:
        processes = app.state.runtime.threads
        assert processes == {}, "no consumer threads in the API process"
        produce(settings, [_purchase("e1"), _purchase("e1"), _purchase("e2")])
        wait_for(lambda: client.get("/v1/profiles/c-1").status_code == 200, timeout_s=60)
        wait_for(lambda: client.get("/v1/profiles/c-1").json()["value"]["orders"] == 2)
        wait_for(lambda: client.get(f"/v1/analytics/touchpoints?{SPAN}").json()["totals"]
                 ["purchases"] == 2, timeout_s=60)

        # The children's counters reach the API's /metrics, beside its own HTTP metrics.
        def applied() -> float:
            return metric_total(client.get("/metrics").text,
                                "touchpoint_profile_events_applied_total")
        wait_for(lambda: applied() == 2)
        text = client.get("/metrics").text
        assert metric_total(text, "touchpoint_profile_duplicates_skipped_total") == 1
        assert "touchpoint_http_request_duration_seconds_count" in text
        assert _ready(client)

        # The analytics consumer yields the CPU to requests and profiles, in every thread.
        by_kind = {s.kind: s.process.pid for s in app.state.consumer_processes.slots}
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert settings.analytics_consumer_nice == 10
        assert _thread_niceness(by_kind["analytics"]) == {min(19, ours + 10)}
        assert _thread_niceness(by_kind["profiles"]) == {ours}

        # A killed consumer makes the service not ready, naming it, and is started again.
        slot = next(s for s in app.state.consumer_processes.slots if s.kind == "profiles")
        killed = slot.process
        os.kill(killed.pid, signal.SIGKILL)
        killed.join(10)
        wait_for(lambda: not _ready(client), timeout_s=5)
        assert "profiles-1" in client.get("/readyz").json()["checks"]["consumers"]
        wait_for(lambda: _ready(client), timeout_s=30)
        assert slot.process.pid != killed.pid
        restarts = metric_total(client.get("/metrics").text,
                                "touchpoint_profile_consumer_restarts_total",
                                'consumer="profiles"')
        assert restarts == 1

        produce(settings, [_purchase("e3")])
        wait_for(lambda: client.get("/v1/profiles/c-1").json()["value"]["orders"] == 3,
                 timeout_s=60)
        children = [s.process for s in app.state.consumer_processes.slots]
    assert all(not process.is_alive() for process in children)
    assert [process.exitcode for process in children] == [0, 0]  # stopped, not killed
