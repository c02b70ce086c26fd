import json

import numpy as np
import pytest
import skops.io as sio
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from services.recommender.model_store import (
    MANIFEST_FILE,
    MODEL_FILE,
    ModelStoreError,
    TamperedModelError,
    UntrustedModelError,
    _sha256,
    load_model,
    save_model,
)
from services.recommender.policies import BetaPriorPolicy

NOW = "2026-03-02T10:00:00Z"


def test_round_trip_keeps_predictions_and_manifest(tmp_path, small_policy, small_sim):
    manifest = save_model(small_policy, tmp_path / "m", NOW, extra={"n_decisions": 3000})
    assert manifest["kind"] == "personalized"
    assert manifest["sha256"] == _sha256(tmp_path / "m" / MODEL_FILE)
    stored = load_model(tmp_path / "m")
    contexts = small_sim.contexts(20, np.random.default_rng(0))
    ids = list(small_sim.action_ids)
    np.testing.assert_array_equal(stored.model.predict(contexts, ids),
                                  small_policy.predict(contexts, ids))
    assert stored.manifest["n_decisions"] == 3000


def test_cold_start_policy_round_trip(tmp_path):
    prior = BetaPriorPolicy(prior_rates={"a": 0.2}).fit([{"phase": "purchase"}], ["a"], [1.0])
    save_model(prior, tmp_path / "p", NOW)
    stored = load_model(tmp_path / "p")
    assert stored.kind == "cold_start"
    assert stored.model.posterior({"phase": "purchase"}, "a") == prior.posterior(
        {"phase": "purchase"}, "a")


def test_tampered_model_file_is_refused(tmp_path, small_policy):
    save_model(small_policy, tmp_path / "m", NOW)
    path = tmp_path / "m" / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(TamperedModelError, match="does not match the manifest"):
        load_model(tmp_path / "m")


def test_replaced_file_with_untrusted_code_is_refused_even_with_matching_checksum(tmp_path,
                                                                                 small_policy):
    # An attacker who can also rewrite the manifest: the type allowlist still stops the load.
    save_model(small_policy, tmp_path / "m", NOW)
    evil = make_pipeline(FunctionTransformer(func=eval))
    path = tmp_path / "m" / MODEL_FILE
    sio.dump(evil, path)
    manifest_path = tmp_path / "m" / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = _sha256(path)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(UntrustedModelError, match="untrusted types"):
        load_model(tmp_path / "m")


def test_missing_or_foreign_directories(tmp_path):
    with pytest.raises(ModelStoreError, match="no model manifest"):
        load_model(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{}")
    with pytest.raises(ModelStoreError, match="not a touchpoint-policy"):
        load_model(tmp_path)
    with pytest.raises(ModelStoreError, match="cannot store"):
        save_model(object(), tmp_path / "x", NOW)


def test_manifest_extra_with_numpy_and_non_finite_numbers_is_valid_json(tmp_path, small_policy):
    extra = {"C": np.float64("nan"), "value": np.float64(0.25), "bound": float("inf"),
             "nested": [{"n": np.int64(3)}]}
    save_model(small_policy, tmp_path / "m", NOW, extra=extra)
    manifest = json.loads((tmp_path / "m" / MANIFEST_FILE).read_text())
    assert (manifest["C"], manifest["value"], manifest["bound"]) == (None, 0.25, None)
    assert manifest["nested"] == [{"n": 3}]
