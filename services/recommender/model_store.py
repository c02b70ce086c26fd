"""Model directories: a skops file plus a manifest with its sha256 checksum.

    MODEL_DIR/
      model.skops      the fitted policy (skops: plain data, no pickle, no code on load)
      manifest.json    {"format", "file", "sha256", "kind", "created_at", "versions", ...}

Loading verifies the checksum first, then refuses any type outside ``TRUSTED_TYPES``, so a
file that was replaced or edited is refused with a clear error instead of being run.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
import skops
import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from services.recommender.policies import BetaPriorPolicy, PersonalizedPolicy

MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
FORMAT = "touchpoint-policy/1"

# Our own estimator classes and the scikit-learn internals they hold; nothing else loads.
TRUSTED_TYPES = frozenset(
    {
        "services.recommender.policies.boosted.BoostedRewardModel",
        "services.recommender.policies.cold_start.BetaPriorPolicy",
        "services.recommender.policies.featurizer.ActionFeaturizer",
        "services.recommender.policies.featurizer.ContextFeaturizer",
        "services.recommender.policies.personalized.PersonalizedPolicy",
        "services.recommender.policies.reward_model.RewardModel",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)
KINDS = {"personalized": PersonalizedPolicy, "cold_start": BetaPriorPolicy}


class ModelStoreError(Exception):
    """A model directory cannot be written or read."""


class TamperedModelError(ModelStoreError):
    """The model file does not match the checksum in its manifest."""


class UntrustedModelError(ModelStoreError):
    """The model file holds types that are not on the allowlist."""


@dataclass(frozen=True)
class StoredModel:
    model: PersonalizedPolicy | BetaPriorPolicy
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN or infinity
    return value


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_model(
    model: PersonalizedPolicy | BetaPriorPolicy,
    directory: str | Path,
    created_at: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model`` and its manifest into ``directory`` (created if needed)."""
    kind = next((k for k, cls in KINDS.items() if isinstance(model, cls)), None)
    if kind is None:
        raise ModelStoreError(f"cannot store a {type(model).__name__}")
    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True)
        _write_atomic(target / MODEL_FILE, sio.dumps(model))
        manifest = {
            "format": FORMAT,
            "file": MODEL_FILE,
            "sha256": _sha256(target / MODEL_FILE),
            "kind": kind,
            "created_at": created_at,
            "versions": {
                "scikit-learn": sklearn.__version__,
                "skops": skops.__version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
            },
            **_jsonable(extra or {}),
        }
        _write_atomic(
            target / MANIFEST_FILE,
            json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False).encode(),
        )
    except OSError as exc:
        raise ModelStoreError(f"cannot write model to {target}: {exc}") from exc
    return manifest


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelStoreError(f"no model manifest at {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TamperedModelError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelStoreError(f"{path}: not a {FORMAT} manifest")
    return manifest


def verify_checksum(directory: str | Path) -> dict[str, Any]:
    """The manifest, after checking the model file against its sha256."""
    manifest = read_manifest(directory)
    path = Path(directory) / MODEL_FILE
    try:
        actual = _sha256(path)
    except OSError as exc:
        raise ModelStoreError(f"cannot read model file {path}: {exc}") from exc
    if actual != manifest.get("sha256"):
        raise TamperedModelError(
            f"refusing to load {path}: sha256 {actual} does not match the manifest "
            f"({manifest.get('sha256')}); the file was modified or replaced"
        )
    return manifest


def load_model(directory: str | Path) -> StoredModel:
    """Load a model directory; refuses a tampered file or one holding untrusted types."""
    manifest = verify_checksum(directory)
    path = Path(directory) / MODEL_FILE
    try:
        data = path.read_bytes()
        found = set(sio.get_untrusted_types(data=data))
        untrusted = found - TRUSTED_TYPES
        if untrusted:
            raise UntrustedModelError(
                f"refusing to load {path}: untrusted types {sorted(untrusted)}"
            )
        model = sio.loads(data, trusted=sorted(found))
    except UntrustedTypesFoundException as exc:
        raise UntrustedModelError(f"refusing to load {path}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelStoreError(f"cannot load model {path}: {exc}") from exc
    expected = KINDS.get(str(manifest.get("kind")))
    if expected is None or not isinstance(model, expected):
        raise ModelStoreError(f"{path}: holds a {type(model).__name__}, manifest says "
                              f"{manifest.get('kind')!r}")
    return StoredModel(model, manifest)
