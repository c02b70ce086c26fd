"""Model registry: numbered versions in a directory, one of them promoted.

    REGISTRY/
      versions/<version>/model.skops, manifest.json
      registry.json     {"promoted": version | null, "history": [promoted versions, oldest first]}

``registry.json`` is replaced atomically, so a reader (the recommender polling for a new
promoted version) never sees a half-written pointer. Promotion goes through a
``PromotionGate``: the candidate's off-policy estimate must beat the logging policy and,
when recorded, the currently promoted model. Rollback returns to the previously promoted
version without the gate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.recommender.model_store import (
    ModelStoreError,
    StoredModel,
    load_model,
    read_manifest,
    verify_checksum,
)

POINTER_FILE = "registry.json"
_VERSION = re.compile(r"^v\d{4,}$")


class RegistryError(Exception):
    """A registry operation cannot be carried out (unknown version, nothing to roll back)."""


class PromotionRefused(RegistryError):
    """The promotion gate said no; ``reason`` explains which comparison failed."""

    def __init__(self, version: str, reason: str):
        super().__init__(f"{version} not promoted: {reason}")
        self.version = version
        self.reason = reason


@dataclass(frozen=True)
class PromotionGate:
    """Which estimate a candidate must show to be promoted.

    The candidate's ``estimator`` estimate (its ``ci_low`` when ``use_lower_bound``) must
    exceed each baseline recorded in its manifest (the logging policy's value, the value
    of the model promoted when it was trained) by ``min_lift`` (absolute, reward units).
    """

    estimator: str = "DR"
    use_lower_bound: bool = False
    min_lift: float = 0.0

    def check(self, manifest: dict[str, Any]) -> str | None:
        """None if the candidate passes, else the reason it does not."""
        evaluation = manifest.get("evaluation") or {}
        candidate = (evaluation.get("candidate") or {}).get(self.estimator)
        if candidate is None:
            return f"no {self.estimator} estimate in the manifest"
        value = candidate.get("ci_low" if self.use_lower_bound else "value")
        label = f"{self.estimator}{' lower bound' if self.use_lower_bound else ''}"
        if value is None:
            return f"the {label} estimate is not a finite number"
        for name in ("logging", "current"):
            baseline = evaluation.get(name)
            if not baseline:
                continue
            reference = baseline.get(self.estimator, baseline.get("on_policy"))
            if reference is None or reference.get("value") is None:
                continue
            if value <= reference["value"] + self.min_lift:
                return (
                    f"{label} {value:.6g} does not beat the {name} policy's "
                    f"{reference['value']:.6g} by {self.min_lift:g}"
                )
        return None


@dataclass(frozen=True)
class VersionInfo:
    version: str
    kind: str
    created_at: str
    promoted: bool
    manifest: dict[str, Any]


class ModelRegistry:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def _pointer(self) -> dict[str, Any]:
        path = self.root / POINTER_FILE
        if not path.exists():
            return {"promoted": None, "history": []}
        try:
            pointer = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"cannot read {path}: {exc}") from exc
        return pointer

    def _write_pointer(self, pointer: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / POINTER_FILE
        tmp = path.with_name(f".{POINTER_FILE}.tmp")
        tmp.write_text(json.dumps(pointer, indent=2), encoding="utf-8")
        os.replace(tmp, path)

    def _versions(self) -> list[str]:
        if not self.versions_dir.exists():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if _VERSION.match(p.name))

    def path(self, version: str) -> Path:
        if version not in self._versions():
            raise RegistryError(f"unknown model version {version!r}")
        return self.versions_dir / version

    def register(self, model_dir: str | Path) -> str:
        """Copy a model directory in as the next version (checksum verified first)."""
        verify_checksum(model_dir)
        existing = self._versions()
        number = int(existing[-1][1:]) + 1 if existing else 1
        version = f"v{number:04d}"
        target = self.versions_dir / version
        staging = self.versions_dir / f".{version}.tmp"
        try:
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(model_dir, staging)
            os.replace(staging, target)
        except OSError as exc:
            raise RegistryError(f"cannot register {model_dir}: {exc}") from exc
        return version

    def list(self) -> list[VersionInfo]:
        promoted = self.promoted_version()
        infos = []
        for version in self._versions():
            try:
                manifest = read_manifest(self.versions_dir / version)
            except ModelStoreError:
                manifest = {}
            infos.append(
                VersionInfo(
                    version,
                    str(manifest.get("kind", "?")),
                    str(manifest.get("created_at", "?")),
                    version == promoted,
                    manifest,
                )
            )
        return infos

    def promoted_version(self) -> str | None:
        return self._pointer().get("promoted")

    def promote(
        self, version: str, gate: PromotionGate | None = None, force: bool = False
    ) -> str:
        """Make ``version`` the promoted one; the gate must pass unless ``force``."""
        manifest = verify_checksum(self.path(version))
        if not force:
            reason = (gate or PromotionGate()).check(manifest)
            if reason is not None:
                raise PromotionRefused(version, reason)
        pointer = self._pointer()
        history = [v for v in pointer.get("history", []) if v != version]
        history.append(version)
        self._write_pointer({"promoted": version, "history": history})
        return version

    def rollback(self) -> str:
        """Promote the version that was promoted before the current one."""
        pointer = self._pointer()
        history = list(pointer.get("history", []))
        if len(history) < 2:
            raise RegistryError("nothing to roll back to: fewer than two promoted versions")
        history.pop()
        self._write_pointer({"promoted": history[-1], "history": history})
        return history[-1]

    def load_promoted(self) -> tuple[str, StoredModel] | None:
        """(version, model) of the promoted version, or None before any promotion."""
        version = self.promoted_version()
        if version is None:
            return None
        return version, load_model(self.path(version))
