"""Static checks of the Kubernetes manifests in deploy/k8s against the code's settings."""

from __future__ import annotations

import re
from collections import defaultdict
from urllib.parse import urlsplit

import pytest

from tests.deploy.manifests import (
    ENV_NAMES,
    K8S_DIR,
    PINNED_TAG,
    SERVICES,
    default_of,
    fields_needing_a_value,
    image_tag,
    is_loopback,
    load_yaml,
    load_yaml_documents,
    settings_from_env,
    touchpoint_variables,
)

KUSTOMIZATION = load_yaml(K8S_DIR / "kustomization.yaml")
OBJECTS: dict[str, dict[str, dict]] = defaultdict(dict)  # kind -> name -> object
for _path in sorted(K8S_DIR.glob("*.yaml")):
    if _path.name != "kustomization.yaml":
        for _doc in load_yaml_documents(_path):
            OBJECTS[_doc["kind"]][_doc["metadata"]["name"]] = _doc

CONFIG = OBJECTS["ConfigMap"]["touchpoint-settings"]["data"]
SECRET = OBJECTS["Secret"]["touchpoint-secrets"]["stringData"]
SECURITY_KEYS = {"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
                 "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CAFILE", "REDIS_URL"}


def container(name: str) -> dict:
    (only,) = OBJECTS["Deployment"][name]["spec"]["template"]["spec"]["containers"]
    return only


def pod_spec(name: str) -> dict:
    return OBJECTS["Deployment"][name]["spec"]["template"]["spec"]


def test_kustomization_lists_every_manifest() -> None:
    files = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == files


def test_deployments_exist_for_the_three_services() -> None:
    assert set(OBJECTS["Deployment"]) == set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_image_is_pinned_and_runs_the_service_module(name: str) -> None:
    spec = container(name)
    tag = image_tag(spec["image"])
    assert tag and PINNED_TAG.match(tag), spec["image"]
    assert spec["command"] == ["python", "-m", SERVICES[name][0]]
    for image in KUSTOMIZATION.get("images", []):
        assert PINNED_TAG.match(str(image["newTag"])), image


def test_settings_keys_are_real_settings_with_valid_values() -> None:
    variables = touchpoint_variables({**CONFIG, **SECRET})
    unknown = sorted(set(variables) - set(ENV_NAMES))
    assert not unknown, f"not settings: {unknown}"
    settings = settings_from_env(variables)
    for field in fields_needing_a_value():
        value = str(getattr(settings, field))
        assert field.upper() in CONFIG or field.upper() in SECRET, field
        assert not is_loopback(value), f"{field.upper()}={value}"


def test_kafka_and_redis_security_settings_are_configured() -> None:
    settings = settings_from_env(touchpoint_variables({**CONFIG, **SECRET}))
    assert set(CONFIG) | set(SECRET) >= SECURITY_KEYS
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism is not None
    # Credentials only in the Secret, never in the ConfigMap.
    assert {"KAFKA_SASL_PASSWORD", "REDIS_URL"} <= set(SECRET)
    assert not {"KAFKA_SASL_PASSWORD", "REDIS_URL"} & set(CONFIG)
    redis_url = urlsplit(SECRET["REDIS_URL"])
    assert redis_url.scheme == "rediss" and redis_url.password and redis_url.port


def test_topic_names_and_ports_agree_with_the_settings() -> None:
    for key, value in CONFIG.items():
        field = ENV_NAMES[key]
        if field.startswith("topic_") or field.endswith("_port"):
            assert str(value) == str(default_of(field)), key


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_probes_hit_health_endpoints_on_the_service_port(name: str) -> None:
    spec = container(name)
    port = default_of(SERVICES[name][1])
    named = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert port in named.values()

    def probe(kind: str) -> tuple[str, int]:
        get = spec[kind]["httpGet"]
        return get["path"], named.get(get["port"], get["port"])

    assert probe("livenessProbe") == ("/healthz", port)
    assert probe("readinessProbe") == ("/readyz", port)
    assert probe("startupProbe")[1] == port


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_resources_are_requested_and_limited(name: str) -> None:
    resources = container(name)["resources"]
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[section]), section


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_pods_run_unprivileged_without_service_link_variables(name: str) -> None:
    spec = pod_spec(name)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert container(name)["securityContext"]["allowPrivilegeEscalation"] is False
    # Kubernetes would otherwise inject e.g. PROFILE_PORT=tcp://..., breaking the port setting.
    assert spec["enableServiceLinks"] is False


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_settings_come_from_the_config_map_and_secret(name: str) -> None:
    sources = container(name)["envFrom"]
    assert {"configMapRef": {"name": "touchpoint-settings"}} in sources
    assert {"secretRef": {"name": "touchpoint-secrets"}} in sources
    extra = {item["name"] for item in container(name).get("env", [])}
    assert extra <= set(ENV_NAMES), extra


def mounted_volume(name: str, path: str) -> tuple[dict, str]:
    """The pod volume holding `path`, and the path inside it."""
    volumes = {v["name"]: v for v in pod_spec(name)["volumes"]}
    mounts = sorted(container(name)["volumeMounts"], key=lambda m: -len(m["mountPath"]))
    for mount in mounts:  # the deepest mount wins, as in the container
        root = mount["mountPath"].rstrip("/")
        if path == root or path.startswith(root + "/"):
            return volumes[mount["name"]], path[len(root) + 1:]
    pytest.fail(f"{name}: {path} is not under any mounted volume")


@pytest.mark.parametrize("name", sorted(SERVICES))
@pytest.mark.parametrize("setting", ["KAFKA_SSL_CAFILE", "API_KEYS_FILE"])
def test_files_named_by_settings_are_mounted_from_secrets(name: str, setting: str) -> None:
    volume, key = mounted_volume(name, CONFIG[setting])
    assert key in OBJECTS["Secret"][volume["secret"]["secretName"]]["stringData"]


def test_model_registry_is_shared_by_every_recommender_replica() -> None:
    volume, _ = mounted_volume("recommender", CONFIG["MODEL_REGISTRY_DIR"])
    claim = OBJECTS["PersistentVolumeClaim"][volume["persistentVolumeClaim"]["claimName"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_data_dir_is_writable_with_a_read_only_root(name: str) -> None:
    mounts = [m["mountPath"] for m in container(name)["volumeMounts"]]
    assert CONFIG["DATA_DIR"] in mounts and "/tmp" in mounts


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_and_disruption_budget_select_the_pods(name: str) -> None:
    labels = OBJECTS["Deployment"][name]["spec"]["template"]["metadata"]["labels"]
    assert selects(OBJECTS["Deployment"][name]["spec"]["selector"], labels)
    budget = OBJECTS["PodDisruptionBudget"][name]
    assert selects(budget["spec"]["selector"], labels)
    replicas = OBJECTS["Deployment"][name]["spec"]["replicas"]
    assert budget["spec"]["minAvailable"] < replicas  # else a node drain can never proceed
    service = OBJECTS["Service"][name]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert service["spec"]["ports"][0]["port"] == default_of(SERVICES[name][1])


def test_recommender_scales_horizontally() -> None:
    (hpa,) = OBJECTS["HorizontalPodAutoscaler"].values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "recommender")
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert "cpu" in container("recommender")["resources"]["requests"]  # HPA needs a request


def test_profile_replicas_fit_the_partition_count() -> None:
    replicas = OBJECTS["Deployment"]["profile"]["spec"]["replicas"]
    assert replicas <= int(CONFIG["TOPIC_PARTITIONS"])
    assert not re.search(r"profile", str(OBJECTS["HorizontalPodAutoscaler"]))
