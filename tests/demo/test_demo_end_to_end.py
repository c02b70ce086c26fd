"""`touchpoint demo` end to end, small: the three services as subprocesses (as `touchpoint run`
starts them) on the test Redis and Kafka-protocol broker, the demo against them over HTTP."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from services.demo.cli import run_demo, summary_dict
from services.demo.session import DemoOptions
from services.demo.summary import render
from services.demo.transport import Endpoints
from services.devstack.lifetime import die_with_parent
from services.devstack.redis import free_port
from services.devstack.runner import SERVICES, _wait_healthy
from services.devstack.webhook_secrets import ensure_webhook_secrets
from services.recommender.learning import read_topic
from services.recommender.registry import ModelRegistry
from services.streaming.publisher import kafka_client_options
from shared.api_keys import ensure_dev_key
from shared.decisions import DecisionRecord
from shared.settings import Settings
from shared.touchpoints import load_catalog

CUSTOMERS = 300


@pytest.fixture
def stack(tmp_path: Path, redis_server, kafka_broker, test_id):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = dict(os.environ)
    env.update({
        "REDIS_URL": redis_server.url,
        "REDIS_NAMESPACE": f"demo{test_id}",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "TOPIC_TOUCHPOINTS": f"touchpoints.v1.{test_id}",
        "TOPIC_DEAD_LETTER": f"touchpoints.dlq.v1.{test_id}",
        "TOPIC_DECISIONS": f"decisions.v1.{test_id}",
        "KAFKA_CONSUMER_GROUP": f"profiles-{test_id}",
        "ANALYTICS_CONSUMER_GROUP": f"analytics-{test_id}",
        "OUTBOUND_CONSUMER_GROUP": f"outbound-{test_id}",
        "DATA_DIR": str(data_dir),
        "MODEL_REGISTRY_DIR": str(data_dir / "models"),
        "RECOMMENDER_MODEL_POLL_S": "0.5",
        "LOG_LEVEL": "WARNING",
        "API_KEYS_FILE": str(data_dir / "api-keys.json"),
    })
    key = ensure_dev_key(data_dir)
    signing = ensure_webhook_secrets(data_dir, env)
    ports = {setting: free_port() for _, _, setting in SERVICES}
    env.update({setting.upper(): str(port) for setting, port in ports.items()})
    processes = []
    try:
        for name, module, _setting in SERVICES:
            log = (tmp_path / f"{name}.log").open("w")
            process = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=die_with_parent)
            processes.append(process)
        for (name, _, setting), process in zip(SERVICES, processes, strict=True):
            assert _wait_healthy(ports[setting], process, 60), \
                (tmp_path / f"{name}.log").read_text()
        settings = Settings(**{k.lower(): v for k, v in env.items()
                               if k.lower() in Settings.model_fields})
        endpoints = Endpoints(f"http://127.0.0.1:{ports['ingestion_port']}",
                              f"http://127.0.0.1:{ports['profile_port']}",
                              f"http://127.0.0.1:{ports['recommender_port']}", key)
        yield endpoints, settings, signing
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_small_demo_run_is_consistent(stack):
    endpoints, settings, signing = stack
    options = DemoOptions(customers=CUSTOMERS, rounds=2, seed=11, concurrency=8,
                          webhook_secrets=signing, model_wait_s=30)
    out = io.StringIO()
    console = Console(file=out, width=160)
    summary = asyncio.run(run_demo(endpoints, options, load_catalog(), settings, console))
    render(summary, console)

    # Every event sent was acknowledged, through the API and through each signed provider.
    assert summary.events_sent > CUSTOMERS * 5
    assert summary.events_accepted == summary.events_sent
    assert summary.api_accepted == summary.api_events
    for provider in ("sendgrid", "mandrill", "shopify"):
        assert summary.webhook_events.get(provider, 0) > 0, provider
        assert summary.webhook_accepted[provider] == summary.webhook_events[provider]
    assert not summary.problems
    assert sum(summary.phases.values()) == CUSTOMERS

    # Round 1 over 70% of the customers, follow-ups for those who reacted, then the kept-back
    # 30% served by the promoted model.
    first, *follow_ups, final_round = summary.rounds
    assert first.decisions + final_round.decisions == CUSTOMERS
    assert final_round.decisions == CUSTOMERS * 3 // 10
    assert [r.decisions for r in follow_ups] == [len(first.active)][:len(follow_ups)]
    learning = [first, *follow_ups]

    # Every decision the demo received is in the decision log, and the trainer read them.
    options_ = kafka_client_options(settings)
    logged, bad = read_topic(options_, settings.topic_decisions, DecisionRecord.model_validate_json)
    assert bad == 0
    assert len({d.decision_id for d in logged}) == summary.decisions
    assert summary.training.decisions_read == sum(r.decisions for r in learning)
    assert summary.training.rows == sum(r.decisions - r.holdout.customers for r in learning)
    assert {d.policy for d in logged if not d.holdout} <= {"cold_start", "model", "fallback"}

    # A model was trained and registered; when the gate promoted it, the recommender served it.
    versions = [info.version for info in ModelRegistry(settings.model_registry_dir).list()]
    assert versions == [summary.training.version]
    assert set(summary.training.estimates) == {"IPS", "SNIPS", "DR"}
    if summary.training.promoted:
        assert summary.model_served
        # A profile read slower than its timeout is answered by the cold-start prior, and
        # counted as degraded; every other answer comes from the promoted model.
        served = {version for version, _ in final_round.versions}
        assert served - {"prior"} == {summary.training.version}
        assert "prior" not in served or final_round.degraded > 0
    assert summary.degraded == sum(r.degraded for r in summary.rounds)
    report = summary_dict(summary)
    assert report["events_accepted"] == report["events_sent"]
    assert "dashboard" in out.getvalue()
