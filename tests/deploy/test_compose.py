"""Static checks of docker-compose.yml and deploy/Dockerfile against the code's settings.

Docker cannot run where the tests run, so these read the files: every image pinned, every
variable a real setting, ports, topics and health checks in step with the services.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import create_app as create_ingestion_app
from services.streaming.publisher import InMemoryPublisher
from tests.deploy.manifests import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_NAMES,
    HEALTH_PATHS,
    PINNED_TAG,
    ROOT,
    SERVICES,
    default_of,
    fields_needing_a_value,
    image_tag,
    interpolate,
    is_loopback,
    load_yaml,
    settings_from_env,
    topic_fields,
    touchpoint_variables,
)

COMPOSE = load_yaml(COMPOSE_FILE)
ALL_SERVICES: dict[str, dict] = COMPOSE["services"]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(value) for key, value in env.items()}


def healthcheck_url(service: dict) -> str:
    test = service["healthcheck"]["test"]
    command = " ".join(test[1:]) if isinstance(test, list) else test
    match = re.search(r"https?://[^\s\"']+", command)
    assert match, f"health check without a URL: {command}"
    return match.group(0)


def touchpoint_services() -> dict[str, dict]:
    return {name: svc for name, svc in ALL_SERVICES.items()
            if (svc.get("build") or {}).get("dockerfile") == "deploy/Dockerfile"}


def test_the_three_services_are_built_from_the_one_dockerfile() -> None:
    assert set(touchpoint_services()) == set(SERVICES)


@pytest.mark.parametrize("name", sorted(ALL_SERVICES))
def test_every_image_is_pinned_to_a_version(name: str) -> None:
    image = ALL_SERVICES[name].get("image")
    assert image, f"{name}: no image (a built service still names its image and tag)"
    tag = image_tag(image)
    assert tag and tag != "latest" and PINNED_TAG.match(tag), f"{name}: {image} is not pinned"


def test_built_image_is_tagged_with_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in touchpoint_services().items():
        assert image_tag(service["image"]) == version, name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_runs_an_existing_module(name: str) -> None:
    module, _ = SERVICES[name]
    assert ALL_SERVICES[name]["command"] == ["python", "-m", module]
    assert importlib.util.find_spec(f"{module}.__main__") is not None, \
        f"`python -m {module}` has no __main__ module"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_variable_a_service_sets_is_a_setting_with_a_valid_value(name: str) -> None:
    env = touchpoint_variables(env_of(ALL_SERVICES[name]))
    unknown = sorted(set(env) - set(ENV_NAMES))
    assert not unknown, f"{name} sets variables no setting reads: {unknown}"
    settings_from_env(env)  # raises on a value the service would refuse at start-up


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_settings_without_a_safe_default_are_set(name: str) -> None:
    env = env_of(ALL_SERVICES[name])
    missing = sorted(f.upper() for f in fields_needing_a_value() if f.upper() not in env)
    assert not missing, f"{name} leaves these at a default unusable in a container: {missing}"
    for key in (f.upper() for f in fields_needing_a_value()):
        assert not is_loopback(env[key]), f"{name}: {key}={env[key]} points at the container"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_ports_agree_with_the_settings(name: str) -> None:
    service = ALL_SERVICES[name]
    port_setting = SERVICES[name][1]
    port = default_of(port_setting)
    env = env_of(service)
    assert int(env.get(port_setting.upper(), port)) == port
    published = [str(p) for p in service.get("ports", [])]
    exposed = [str(p) for p in service.get("expose", [])]
    assert published or exposed, f"{name} neither publishes nor exposes its port"
    for mapping in published:
        assert mapping.rsplit(":", 1)[-1] == str(port), f"{name}: {mapping} misses port {port}"
    for item in exposed:
        assert item == str(port)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_health_check_hits_a_health_endpoint_on_the_service_port(name: str) -> None:
    url = healthcheck_url(ALL_SERVICES[name])
    match = re.fullmatch(r"http://(127\.0\.0\.1|localhost):(\d+)(/\w+)", url)
    assert match, url
    assert int(match.group(2)) == default_of(SERVICES[name][1])
    assert match.group(3) in HEALTH_PATHS
    assert importlib.util.find_spec("services.ops.healthcheck") is not None


def test_health_endpoints_exist_on_a_running_app() -> None:
    """The paths the checks use are the ones the shared health router serves."""
    from shared.settings import Settings

    app = create_ingestion_app(Settings(), publisher=InMemoryPublisher())
    with TestClient(app) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/readyz")  # 503 is a real answer too: a dependency is down
        assert ready.status_code in (200, 503) and "checks" in ready.json()
        assert set(HEALTH_PATHS) == {"/healthz", "/readyz"}


def test_profile_service_scales_without_clashes() -> None:
    profile = ALL_SERVICES["profile"]
    assert "container_name" not in profile
    for mapping in profile.get("ports", []):
        host = str(mapping).rsplit(":", 1)[0]
        assert "-" in host, f"a fixed host port ({mapping}) clashes at --scale profile=2"


def test_profile_gateway_forwards_to_the_profile_port() -> None:
    conf = (ROOT / "deploy" / "nginx" / "profile-gateway.conf").read_text()
    port = default_of("profile_port")
    assert f"http://profile:{port}" in conf
    assert f"listen {port};" in conf
    gateway = ALL_SERVICES["profile-gateway"]
    assert gateway["depends_on"]["profile"]["condition"] == "service_healthy"
    assert healthcheck_url(gateway).endswith(f":{port}/healthz")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_wait_for_topics_and_redis(name: str) -> None:
    depends = ALL_SERVICES[name]["depends_on"]
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"


def test_every_health_condition_has_a_health_check() -> None:
    for name, service in ALL_SERVICES.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, dict):
            for target, rule in depends.items():
                if rule.get("condition") == "service_healthy":
                    assert "healthcheck" in ALL_SERVICES[target], f"{name} waits on {target}"
    assert ALL_SERVICES["kafka-init"]["restart"] == "no"


def test_service_topic_names_are_the_settings_defaults() -> None:
    for name in SERVICES:
        env = env_of(ALL_SERVICES[name])
        for field, topic in topic_fields().items():
            assert env.get(field.upper(), topic) == topic, f"{name}: {field.upper()}"
        assert int(env.get("TOPIC_PARTITIONS", default_of("topic_partitions"))) == \
            default_of("topic_partitions")


def test_kafka_runs_kraft_single_node_with_the_official_image() -> None:
    kafka = ALL_SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = env_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in json.dumps(COMPOSE).lower()
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    for name in SERVICES:
        assert env_of(ALL_SERVICES[name])["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert ALL_SERVICES["kafka-init"]["image"] == kafka["image"]


def run_kafka_init(tmp_path: Path, overrides: dict[str, str]) -> list[list[str]]:
    """Runs kafka-init's script with a kafka-topics.sh that records its arguments."""
    service = ALL_SERVICES["kafka-init"]
    record = tmp_path / "calls"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {shlex.quote(str(record))}\n'
                    'case "$*" in *--describe*) echo "PartitionCount: x";; esac\n')
    fake.chmod(0o755)
    script = service["command"][0].replace("$$", "$")
    script = script.replace("/opt/kafka/bin/kafka-topics.sh", shlex.quote(str(fake)))
    env = {"PATH": "/usr/bin:/bin", **env_of(service), **overrides}
    subprocess.run([*service["entrypoint"], script], env=env, check=True,
                   capture_output=True, text=True, timeout=20)
    return [line.split() for line in record.read_text().splitlines()]


def created_topics(calls: list[list[str]]) -> dict[str, int]:
    topics = {}
    for args in calls:
        if "--create" in args:
            topics[args[args.index("--topic") + 1]] = int(args[args.index("--partitions") + 1])
            assert "--if-not-exists" in args  # re-running `up` must not fail
    return topics


def retention(calls: list[list[str]]) -> dict[str, int]:
    return {args[args.index("--topic") + 1]: int(args[args.index("--config") + 1]
                                                 .removeprefix("retention.ms="))
            for args in calls if "--create" in args}


def test_topic_retention_keeps_the_history_replays_need(tmp_path: Path) -> None:
    kept = retention(run_kafka_init(tmp_path, {}))
    assert kept[default_of("topic_touchpoints")] == -1  # profiles are rebuilt from it
    assert kept[default_of("topic_dead_letter")] >= 7 * 86_400_000
    assert kept[default_of("topic_decisions")] >= 90 * 86_400_000


def test_kafka_init_creates_exactly_the_topics_the_settings_name(tmp_path: Path) -> None:
    calls = run_kafka_init(tmp_path, {})
    partitions = default_of("topic_partitions")
    assert created_topics(calls) == {topic: partitions for topic in topic_fields().values()}


def test_kafka_init_takes_the_partition_count_from_configuration(tmp_path: Path) -> None:
    calls = run_kafka_init(tmp_path, {"TOPIC_PARTITIONS": "48"})
    assert set(created_topics(calls).values()) == {48}
    env = ALL_SERVICES["kafka-init"]["environment"]
    assert env["TOPIC_PARTITIONS"] == "${TOPIC_PARTITIONS:-12}"
    assert int(interpolate(env["TOPIC_PARTITIONS"])) == default_of("topic_partitions")


def test_redis_is_7_with_append_only_persistence_on_a_volume() -> None:
    redis = ALL_SERVICES["redis"]
    assert image_tag(redis["image"]).startswith("7.")
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(str(v).endswith(":/data") and not str(v).startswith(".") for v in redis["volumes"])
    assert "redis-data" in COMPOSE["volumes"]


def test_observability_is_an_optional_profile() -> None:
    for name in ("prometheus", "grafana"):
        assert ALL_SERVICES[name]["profiles"] == ["observability"]
    for name in SERVICES:
        assert "profiles" not in ALL_SERVICES[name]


def named_volume_at(service: dict, path: str) -> str:
    """The named volume mounted exactly at `path` in a service."""
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in service.get("volumes", [])}
    assert path in mounts, f"nothing mounted at {path}"
    assert mounts[path] in COMPOSE["volumes"], f"{mounts[path]} is not a named volume"
    return mounts[path]


def test_model_registry_and_api_keys_live_on_named_volumes() -> None:
    keys_volumes = set()
    for name in SERVICES:
        keys_dir = str(Path(env_of(ALL_SERVICES[name])["API_KEYS_FILE"]).parent)
        keys_volumes.add(named_volume_at(ALL_SERVICES[name], keys_dir))
    assert len(keys_volumes) == 1  # one key file for the three services
    recommender = ALL_SERVICES["recommender"]
    named_volume_at(recommender, env_of(recommender)["MODEL_REGISTRY_DIR"])
    for directory in ("keys", "models"):  # named volumes take these owners from the image
        assert f"/var/lib/touchpoint/{directory}" in DOCKERFILE.read_text()


def test_bind_mounted_files_exist() -> None:
    for name, service in ALL_SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_each_service_on_its_port() -> None:
    config = load_yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    for name, (_, port_setting) in SERVICES.items():
        port = default_of(port_setting)
        job = jobs[name]
        assert job["metrics_path"] == "/metrics"
        targets = [t for c in job.get("static_configs", []) for t in c["targets"]]
        dns = job.get("dns_sd_configs", [])
        assert targets == [f"{name}:{port}"] or (dns and dns[0]["port"] == port)


def dashboard_queries() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/touchpoint.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_dashboard_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/touchpoint.json").read_text())
    source = load_yaml(ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml")
    uid = source["datasources"][0]["uid"]
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid
    provider = load_yaml(ROOT / "deploy/grafana/provisioning/dashboards/touchpoint.yml")
    mounts = ALL_SERVICES["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts


def test_dashboard_covers_latency_events_lag_and_decisions() -> None:
    text = "\n".join(dashboard_queries())
    for family in ("touchpoint_http_request_duration_seconds_bucket",
                   "touchpoint_events_accepted_total", "touchpoint_events_rejected_total",
                   "touchpoint_events_dead_lettered_total", "touchpoint_profile_consumer_lag",
                   "touchpoint_recommender_decisions_total"):
        assert family in text, family
    assert "by (action)" in text and "by (model_version)" in text


def exposed_metrics() -> dict[str, set[str]]:
    """Metric family -> label names, from the services' own metric definitions."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from services.profiles.metrics import ProfileMetrics
    from services.recommender.api.deps import RecommenderMetrics
    from shared.settings import Settings

    families: dict[str, set[str]] = {}
    app = create_ingestion_app(Settings(), publisher=InMemoryPublisher())
    with TestClient(app) as client:
        client.get("/healthz")
        text = client.get("/metrics").text
    for name in re.findall(r"^# TYPE (\S+) ", text, re.M):
        families[name] = set()
    families["touchpoint_http_request_duration_seconds"] = {"method", "route", "status"}
    families["touchpoint_events_dead_lettered_total"] = {"source"}
    for owner in (ProfileMetrics(CollectorRegistry()), RecommenderMetrics(CollectorRegistry())):
        for metric in vars(owner).values():
            if isinstance(metric, MetricWrapperBase):
                described = metric.describe()[0]
                name = described.name + ("_total" if described.type == "counter" else "")
                families[name] = set(metric._labelnames)  # label names are not public API
    return families


def test_every_dashboard_query_uses_metrics_and_labels_the_services_expose() -> None:
    families = exposed_metrics()
    for query in dashboard_queries():
        for name in re.findall(r"\b(touchpoint_\w+)", query):
            family = re.sub(r"_(bucket|count|sum)$", "", name)
            assert family in families, f"{family} is exposed by no service"
            grouped = re.findall(r"by \(([^)]*)\)", query)
            labels = {label.strip() for group in grouped for label in group.split(",")}
            assert labels <= families[family] | {"job", "instance", "le"}, (query, labels)


# --- deploy/Dockerfile ------------------------------------------------------------------

DOCKERFILE_TEXT = DOCKERFILE.read_text()


def test_dockerfile_is_multi_stage_on_a_pinned_python() -> None:
    bases = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", DOCKERFILE_TEXT, re.M)
    assert len(bases) >= 2 and all(stage for _, stage in bases)
    for image, _ in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image
    assert "COPY --from=build" in DOCKERFILE_TEXT


def test_dockerfile_installs_the_project_and_runs_unprivileged() -> None:
    assert re.search(r"pip install \.$", DOCKERFILE_TEXT, re.M)
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE_TEXT, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in packages["packages"]["find"]["include"]:
        assert f"COPY {pattern.rstrip('*')} " in DOCKERFILE_TEXT


def test_dockerfile_health_check_and_environment_are_real() -> None:
    match = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])", DOCKERFILE_TEXT, re.S)
    assert match
    url = json.loads(match.group(1))[-1]
    assert url == f"http://127.0.0.1:{default_of('ingestion_port')}/healthz"
    assert 'CMD ["python", "-m", "services.ingestion"]' in DOCKERFILE_TEXT
    env_block = re.search(r"^ENV PATH=.*?(?=^\S)", DOCKERFILE_TEXT, re.S | re.M).group(0)
    settings_like = dict(re.findall(r"\b([A-Z_]+)=(\S+)", env_block))
    ours = {k: v for k, v in settings_like.items() if not k.startswith(("PYTHON", "PATH"))}
    assert set(ours) <= set(ENV_NAMES)
    settings_from_env(ours)
