"""Reading the deployment files and the settings they must agree with (no Docker needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S_DIR = ROOT / "deploy" / "k8s"

# The three services: compose name -> (module run by `python -m`, its port setting).
SERVICES = {
    "ingestion": ("services.ingestion", "ingestion_port"),
    "profile": ("services.profiles", "profile_port"),
    "recommender": ("services.recommender", "recommender_port"),
}
HEALTH_PATHS = {"/healthz", "/readyz"}
# A concrete version: 1.2, 1.2.3, v3.1.0, 7.4.2-alpine ... never "latest" or a bare major.
PINNED_TAG = re.compile(r"^v?\d+\.\d+(\.\d+)?([.-][A-Za-z0-9.]+)*$")
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")

FIELDS = Settings.model_fields
ENV_NAMES = {name.upper(): name for name in FIELDS}
# Variables libraries read under their own standard names (OpenTelemetry's exporter settings,
# prometheus_client's multi-process folder).
STANDARD_PREFIXES = ("OTEL_", "PROMETHEUS_")


def touchpoint_variables(env: dict[str, object]) -> dict[str, object]:
    """The variables that must be Touchpoint settings: all but the libraries' standard ones."""
    return {key: value for key, value in env.items() if not key.startswith(STANDARD_PREFIXES)}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text("utf-8"))


def load_yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


def interpolate(value: object) -> str:
    """A compose value with `${VAR:-default}` replaced by its default, as with no overrides."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


def image_tag(image: str) -> str | None:
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else None


def default_of(field: str) -> Any:
    return FIELDS[field].get_default(call_default_factory=True)


def settings_from_env(env: dict[str, object]) -> Settings:
    """Settings built from exactly these variables (validates every value)."""
    return Settings(**{ENV_NAMES[key]: str(value) for key, value in env.items()})


def fields_needing_a_value() -> set[str]:
    """Fields a deployment must set: required ones, and those defaulting to this machine.

    A loopback default (Kafka or Redis on localhost, binding 127.0.0.1) or a path relative to
    the working directory (`.data`) is right for `touchpoint run` and wrong in a container.
    """
    needed = set()
    for name, info in FIELDS.items():
        if info.is_required():
            needed.add(name)
            continue
        default = default_of(name)
        if is_loopback(str(default)) or (isinstance(default, Path) and not default.is_absolute()):
            needed.add(name)
    return needed


def topic_fields() -> dict[str, str]:
    """Topic settings and their default names (`topic_partitions` is a count, not a topic)."""
    return {name: default_of(name) for name in FIELDS
            if name.startswith("topic_") and isinstance(default_of(name), str)}


def is_loopback(value: str) -> bool:
    return bool(re.search(r"localhost|127\.0\.0\.1", value))
