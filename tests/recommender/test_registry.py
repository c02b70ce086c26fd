import json

import pytest

from services.recommender.model_store import TamperedModelError, save_model
from services.recommender.registry import (
    ModelRegistry,
    PromotionGate,
    PromotionRefused,
    RegistryError,
)

NOW = "2026-03-02T10:00:00Z"


def _estimate(value, half=0.01):
    if value is None:  # stored as null when the estimate was not finite
        return {"value": None, "ci_low": None, "ci_high": None, "n": 1000}
    return {"value": value, "ci_low": value - half, "ci_high": value + half, "n": 1000}


def make_model(tmp_path, name, policy, candidate, logging=0.1, current=None):
    evaluation = {"candidate": {"DR": _estimate(candidate)},
                  "logging": {"on_policy": _estimate(logging)}}
    if current is not None:
        evaluation["current"] = {"DR": _estimate(current)}
    save_model(policy, tmp_path / name, NOW, extra={"evaluation": evaluation})
    return tmp_path / name


@pytest.mark.parametrize(
    ("gate", "candidate", "logging", "current", "refusal"),
    [
        (PromotionGate(), 0.2, 0.1, None, None),
        (PromotionGate(), 0.09, 0.1, None, "logging"),
        (PromotionGate(), 0.2, 0.1, 0.25, "current"),
        (PromotionGate(min_lift=0.15), 0.2, 0.1, None, "logging"),
        (PromotionGate(use_lower_bound=True), 0.105, 0.1, None, "lower bound"),
        (PromotionGate(estimator="IPS"), 0.2, 0.1, None, "no IPS estimate"),
        (PromotionGate(), None, 0.1, None, "not a finite number"),
    ],
)
def test_promotion_gate(tmp_path, small_policy, gate, candidate, logging, current, refusal):
    registry = ModelRegistry(tmp_path / "registry")
    version = registry.register(make_model(tmp_path, "m", small_policy, candidate, logging,
                                           current))
    if refusal is None:
        assert registry.promote(version, gate) == version
        assert registry.promoted_version() == version
    else:
        with pytest.raises(PromotionRefused, match=refusal):
            registry.promote(version, gate)
        assert registry.promoted_version() is None
        assert registry.promote(version, gate, force=True) == version


def test_register_list_promote_rollback(tmp_path, small_policy):
    registry = ModelRegistry(tmp_path / "registry")
    assert registry.list() == [] and registry.load_promoted() is None
    v1 = registry.register(make_model(tmp_path, "a", small_policy, 0.2))
    v2 = registry.register(make_model(tmp_path, "b", small_policy, 0.3))
    assert (v1, v2) == ("v0001", "v0002")
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    registry.promote(v1)
    registry.promote(v2)
    listed = {info.version: info.promoted for info in registry.list()}
    assert listed == {"v0001": False, "v0002": True}
    version, stored = registry.load_promoted()
    assert version == v2 and stored.kind == "personalized"
    assert registry.rollback() == v1
    assert registry.promoted_version() == v1
    pointer = json.loads((tmp_path / "registry" / "registry.json").read_text())
    assert pointer == {"promoted": "v0001", "history": ["v0001"]}
    with pytest.raises(RegistryError, match="unknown model version"):
        registry.promote("v0009")


def test_tampered_version_cannot_be_registered_or_promoted(tmp_path, small_policy):
    registry = ModelRegistry(tmp_path / "registry")
    source = make_model(tmp_path, "m", small_policy, 0.2)
    version = registry.register(source)
    (registry.path(version) / "model.skops").write_bytes(b"not the model")
    with pytest.raises(TamperedModelError):
        registry.promote(version)
    (source / "model.skops").write_bytes(b"not the model")
    with pytest.raises(TamperedModelError):
        registry.register(source)
