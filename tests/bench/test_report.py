"""The results document: JSON-safe values and the rewritten section of the docs."""

from __future__ import annotations

import math

from services.bench.report import RESULTS_END, RESULTS_START, clean, markdown_results, update_docs
from services.bench.scenarios import Outcome


def test_clean_makes_values_json_safe():
    assert clean({"a": math.nan, "b": (1, 2.5), "c": {3: math.inf}}) == {
        "a": None, "b": [1, 2.5], "c": {"3": None}}


def test_update_docs_replaces_only_the_results_section(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\nMethod.\n\n{RESULTS_START}\nold\n{RESULTS_END}\n\n"
                    "## Capacity\n\nkept\n", "utf-8")
    update_docs(docs, "new table")
    text = docs.read_text("utf-8")
    assert "old" not in text and "new table" in text
    assert text.startswith("# Benchmarks\n\nMethod.") and text.endswith("## Capacity\n\nkept\n")
    update_docs(docs, "newer")
    assert docs.read_text("utf-8").count(RESULTS_START) == 1


def test_update_docs_adds_the_section_when_missing(tmp_path):
    docs = tmp_path / "benchmarks.md"
    update_docs(docs, "first")
    assert RESULTS_START in docs.read_text("utf-8") and "first" in docs.read_text("utf-8")


def test_markdown_lists_unavailable_scenarios_with_their_reason():
    document = {
        "started_at": "2026-11-23T03:00:00+00:00", "duration_s": 600, "mode": "full",
        "machine": {"cores": 2, "memory_gib": 23.5, "cpu_model": "X", "python": "3.11",
                    "load_average_at_start": (0.5, 0.4, 0.3)},
        "scenarios": [
            Outcome("a", "Single", result="p99 5 ms", target="p99 < 20 ms", met=True,
                    share=0.5).to_dict(),
            Outcome("b", "Fold", status="not available", reason="profile missing").to_dict(),
        ],
        "ceilings": {}, "notes": ["noisy"], "results_file": "bench/results/x.json",
    }
    text = markdown_results(document)
    assert "| Single | p99 5 ms | p99 < 20 ms | yes |  | 50% |" in text
    assert "| Fold | profile missing |  | not available |" in text
    assert "- noisy" in text
