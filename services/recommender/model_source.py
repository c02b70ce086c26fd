"""The registry as the serving side sees it: the promoted version and a verified load."""

from __future__ import annotations

from pathlib import Path

from services.recommender.model_store import StoredModel, load_model
from services.recommender.registry import ModelRegistry


class RegistryModelSource:
    """Reads the promoted pointer and loads versions (checksum and type allowlist checked)."""

    def __init__(self, root: str | Path):
        self.registry = ModelRegistry(root)

    def promoted_version(self) -> str | None:
        return self.registry.promoted_version()

    def load(self, version: str) -> StoredModel:
        return load_model(self.registry.path(version))
