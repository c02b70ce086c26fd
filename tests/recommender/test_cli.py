import argparse
import json

import pytest

from services.recommender import cli


def run(argv):
    parser = argparse.ArgumentParser(prog="touchpoint")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, log_file):
    root = tmp_path_factory.mktemp("trained")
    model = root / "model"
    assert run(["train", "--log", str(log_file), "--out", str(model)]) == 0
    return model


def test_train_writes_a_model_and_registers_it(trained, tmp_path, capsys):
    capsys.readouterr()
    registry = tmp_path / "registry"
    assert run(["models", "--registry", str(registry), "list"]) == 0
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["kind"] == "personalized"
    assert manifest["n_decisions"] == 3000
    assert set(manifest["evaluation"]) == {"candidate", "logging"}
    assert manifest["evaluation"]["candidate"]["DR"]["ci_low"] < \
        manifest["evaluation"]["candidate"]["DR"]["value"]
    from services.recommender.registry import ModelRegistry

    assert ModelRegistry(registry).register(trained) == "v0001"


def test_decide_writes_one_line_per_context(trained, tmp_path, small_sim):
    import numpy as np

    contexts = small_sim.contexts(30, np.random.default_rng(1))
    path = tmp_path / "ctx.jsonl"
    lines = [{"id": i, "context": c, "actions": list(small_sim.action_ids)[:3]}
             for i, c in enumerate(contexts)]
    lines.append({"id": "new-action", "context": contexts[0],
                  "actions": [{"id": "brand_new", "features": {}}, "action_00"]})
    lines.append({"id": "all", "context": contexts[0]})
    path.write_text("\n".join(json.dumps(line) for line in lines))
    for greedy in (True, False):
        out = tmp_path / f"out-{greedy}.jsonl"
        argv = ["decide", "--model", str(trained), "--contexts", str(path), "--out", str(out)]
        assert run([*argv, "--greedy"] if greedy else argv) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["id"] for r in rows] == [line["id"] for line in lines]
        assert all(set(r) == {"id", "action", "propensity", "score"} for r in rows)
        for row, line in zip(rows[:30], lines[:30], strict=True):
            assert row["action"] in line["actions"]
            if greedy:
                assert row["propensity"] == 1.0
            else:
                assert row["propensity"] in (pytest.approx(0.1 / 3),
                                             pytest.approx(0.9 + 0.1 / 3))
        assert rows[-2]["action"] in ("brand_new", "action_00")
        assert rows[-1]["action"] in small_sim.action_ids


def test_evaluate_prints_every_policy(trained, log_file, tmp_path, capsys):
    capsys.readouterr()
    report = tmp_path / "estimates.json"
    assert run(["evaluate", "--model", str(trained), "--log", str(log_file),
                "--json", str(report)]) == 0
    out = capsys.readouterr().out
    for word in ("IPS", "SNIPS", "DR", "greedy", "action_00", "logging"):
        assert word in out
    payload = json.loads(report.read_text())
    greedy = payload["greedy"]["DR"]
    best_constant = max(v["DR"]["value"] for k, v in payload.items()
                        if k.startswith("constant:"))
    assert greedy["value"] > best_constant
    assert greedy["ci_low"] < greedy["value"] < greedy["ci_high"]


def test_models_commands(trained, log_file, tmp_path, capsys):
    registry = str(tmp_path / "registry")
    from services.recommender.registry import ModelRegistry

    ModelRegistry(registry).register(trained)
    assert run(["train", "--log", str(log_file), "--out", str(tmp_path / "m2"),
                "--registry", registry, "--current", str(trained)]) == 0
    assert run(["models", "--registry", registry, "promote", "v0001"]) == 0
    # v0002 was evaluated against v0001 on the same log; equal models cannot beat it.
    assert run(["models", "--registry", registry, "promote", "v0002"]) == 1
    assert "not promoted" in capsys.readouterr().out
    assert run(["models", "--registry", registry, "promote", "v0002", "--force"]) == 0
    assert run(["models", "--registry", registry, "list"]) == 0
    assert "v0002" in capsys.readouterr().out
    assert run(["models", "--registry", registry, "rollback"]) == 0
    assert "v0001" in capsys.readouterr().out
    assert run(["models", "--registry", registry, "promote", "v0042"]) == 1


def test_bad_input_fails_with_the_line_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": {}, "action": "a", "propensity": 2, "reward": 1}\n')
    assert run(["train", "--log", str(bad), "--out", str(tmp_path / "m")]) == 1
    assert "line 1: propensity" in capsys.readouterr().out
    assert run(["evaluate", "--model", str(tmp_path / "none"), "--log", str(bad)]) == 1
    assert "no model manifest" in capsys.readouterr().out
