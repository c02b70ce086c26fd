"""A service with several worker processes on one port: metrics summed over them."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.devstack.lifetime import die_with_parent, stop_process
from services.devstack.redis import free_port

ROOT = Path(__file__).resolve().parents[2]


def metric_total(text: str, name: str, labels: str = "") -> float:
    pattern = re.compile(rf"^{re.escape(name)}\{{[^}}]*{re.escape(labels)}[^}}]*\}} (\S+)$", re.M)
    return sum(float(value) for value in pattern.findall(text))


def start_service(module: str, env: dict[str, str], tmp_path: Path) -> subprocess.Popen:
    log = (tmp_path / "service.log").open("w")
    try:
        return subprocess.Popen([sys.executable, "-m", module], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent)
    finally:
        log.close()


def wait_for_workers(process: subprocess.Popen, base: str, metrics_dir: Path,
                     tmp_path: Path) -> int:
    """Waits until the service answers and two workers wrote metric files; the health
    checks that reached it."""
    deadline = time.monotonic() + 60
    health_checks = 0
    while True:
        assert process.poll() is None, (tmp_path / "service.log").read_text()
        try:
            health_checks += 1
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            health_checks -= 1  # never reached a worker
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.3)
    # Both workers built their app (each writes its own metric files, named by pid).
    while len({p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("*.db")}) < 2:
        assert time.monotonic() < deadline, sorted(p.name for p in metrics_dir.iterdir())
        time.sleep(0.3)
    return health_checks


def test_two_ingestion_workers_count_every_request_once(settings, tmp_path):
    port, metrics_dir = free_port(), tmp_path / "metrics"
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url, "REDIS_NAMESPACE": settings.redis_namespace,
        "AUTH_DISABLED": "true", "INGESTION_PORT": str(port), "INGESTION_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "DATA_DIR": str(tmp_path / "data"),
    }
    process = start_service("services.ingestion", env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        health_checks = wait_for_workers(process, base, metrics_dir, tmp_path)
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(30):
                assert client.get("/healthz", headers={"Connection": "close"}).status_code == 200
            text = client.get("/metrics").text
        assert metric_total(text, "touchpoint_http_request_duration_seconds_count",
                            'route="/healthz"') == health_checks + 30
    finally:
        stop_process(process)


def test_two_workers_share_the_port_and_metrics_add_up(settings, tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
        "REDIS_URL": settings.redis_url, "REDIS_NAMESPACE": settings.redis_namespace,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TOPIC_DECISIONS": settings.topic_decisions, "AUTH_DISABLED": "true",
        "RECOMMENDER_PORT": str(port), "RECOMMENDER_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "DATA_DIR": str(tmp_path / "data"),
        "MODEL_REGISTRY_DIR": str(tmp_path / "models"),
    }
    process = start_service("services.recommender", env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        health_checks = wait_for_workers(process, base, metrics_dir, tmp_path)

        sent = 60
        with httpx.Client(base_url=base, timeout=10) as client:  # a new connection each time
            for i in range(sent):
                response = client.post("/v1/recommendations", json={"customer_id": f"w-{i}"},
                                       headers={"Connection": "close"})
                assert response.status_code == 200, response.text
            text = client.get("/metrics").text
        assert metric_total(text, "touchpoint_http_request_duration_seconds_count",
                            'route="/v1/recommendations"') == sent
        assert metric_total(text, "touchpoint_recommender_decisions_total") == sent
        assert metric_total(text, "touchpoint_http_request_duration_seconds_count",
                            'route="/healthz"') == health_checks
        assert 'touchpoint_recommender_model_info{model_version="prior"} 1.0' in text
    finally:
        stop_process(process)
