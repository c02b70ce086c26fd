"""The results: a rich table on the terminal, a JSON file, and the results section of the docs."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from services.bench.scenarios import Outcome

RESULTS_START = "<!-- bench:results:start -->"
RESULTS_END = "<!-- bench:results:end -->"


def _share(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.0%}"


def _met(outcome: Outcome) -> str:
    if outcome.status != "ok":
        return outcome.status
    return {True: "yes", False: "NO", None: ""}[outcome.met]


def ceiling_rows(ceilings: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    http = ceilings.get("http") or {}
    if http:
        latency = http["fixed_rate"]["latency"]
        rows.append(("Empty FastAPI endpoint (HTTP)",
                     f"{http['max_requests_per_s']:,.0f} req/s max; p50 "
                     f"{latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms at "
                     f"{http['fixed_rate']['target_rate']:g} req/s; load generator "
                     f"{http['max_rate'].get('generator_cpu_us_per_request') or 0:.0f} us CPU "
                     "per request"))
    kafka = ceilings.get("kafka") or {}
    labels = (("produce_kafka_python", "Raw kafka-python produce ({compression})"),
              ("produce_kafka_python_uncompressed", "Raw kafka-python produce ({compression})"),
              ("produce_confluent", "Raw confluent-kafka produce ({compression})"),
              ("consume_kafka_python", "Raw kafka-python group consume"))
    for key, label in labels:
        item = kafka.get(key)
        if item and item.get("messages_per_s"):
            rows.append((label.format(compression=item.get("compression", "")),
                         f"{item['messages_per_s']:,.0f} msg/s"))
    state = ceilings.get("redis") or {}
    if state:
        rows.append(("Raw pipelined Redis (SET / GET, 1,000 per pipeline)",
                     f"{state['pipelined_set_per_s']:,.0f} / {state['pipelined_get_per_s']:,.0f} "
                     f"ops/s; single GET p50 {state['single_get_p50_ms']:.3f} ms"))
    model = ceilings.get("model") or {}
    if model:
        rows.append((f"Bare model predict ({model['rows']} rows x {model['features']} features)",
                     f"predict_proba {model['predict_proba_ms']:.3f} ms; numpy dot "
                     f"{model['numpy_dot_ms']:.4f} ms"))
    costs = ceilings.get("ingest_costs") or {}
    if costs.get("total_kafka_python_us"):
        rows.append(("Batched ingest CPU per event (parse / validate / build record / publish)",
                     f"{costs['parse_json_us']:.1f} / {costs['validate_us']:.1f} / "
                     f"{costs['build_records_us']:.1f} / {costs['publish_kafka_python_us']:.1f} "
                     f"us with kafka-python = {costs['one_core_events_per_s_kafka_python']:,} "
                     f"events/s per core; publish {costs.get('publish_confluent_us') or 0:.1f} "
                     f"us with confluent-kafka = "
                     f"{costs.get('one_core_events_per_s_confluent') or 0:,} events/s per core"))
    return rows


def print_tables(outcomes: Sequence[Outcome], ceilings: dict[str, Any], machine: dict[str, Any],
                 console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="Touchpoint benchmark", show_lines=False)
    for column in ("Scenario", "Result", "Target", "Met", "Ceiling", "Share"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        result = outcome.result if outcome.status == "ok" else outcome.reason
        style = {"yes": "green", "NO": "red"}.get(_met(outcome), "dim")
        table.add_row(outcome.title, result, outcome.target, f"[{style}]{_met(outcome)}[/]",
                      outcome.ceiling, _share(outcome.share))
    console.print(table)
    limits = Table(title="Ceilings measured in the same run")
    limits.add_column("Building block")
    limits.add_column("Measured")
    for name, value in ceiling_rows(ceilings):
        limits.add_row(name, value)
    console.print(limits)
    console.print(f"Machine: {machine_line(machine)}")


def machine_line(machine: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in machine.get("load_average_at_start", ()))
    return (f"{machine['cores']} cores, {machine['memory_gib']} GiB, {machine['cpu_model']}, "
            f"Python {machine['python']}, load average at start {load}")


def markdown_results(document: dict[str, Any]) -> str:
    lines = [
        f"Last full run: {document['started_at']} ({document['duration_s']:.0f} s in all, "
        f"mode `{document['mode']}`).",
        "",
        f"Machine: {machine_line(document['machine'])}.",
        "",
        "| Scenario | Result | Target | Met | Ceiling | Share |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    for item in document["scenarios"]:
        outcome = Outcome(**item)
        result = outcome.result if outcome.status == "ok" else outcome.reason
        lines.append(f"| {outcome.title} | {result} | {outcome.target} | {_met(outcome)} | "
                     f"{outcome.ceiling} | {_share(outcome.share)} |")
    lines += ["", "Ceilings measured in the same run:", "", "| Building block | Measured |",
              "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in ceiling_rows(document["ceilings"])]
    if document.get("notes"):
        lines += ["", *[f"- {note}" for note in document["notes"]]]
    lines.append("")
    lines.append(f"Raw figures: `{document['results_file']}`.")
    return "\n".join(lines)


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(document), indent=1) + "\n", "utf-8")


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null, tuples lists, times ISO strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def update_docs(docs_path: Path, section: str, start: str = RESULTS_START,
                end: str = RESULTS_END, heading: str = "Results") -> None:
    """Replaces the text between two markers of a document (adds the section if missing)."""
    text = docs_path.read_text("utf-8") if docs_path.exists() else ""
    block = f"{start}\n{section}\n{end}"
    if start in text and end in text:
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        text = pattern.sub(lambda _: block, text)
    else:
        head = text.rstrip() + "\n\n" if text else "# Benchmarks\n\n"
        text = head + f"## {heading}\n\n" + block + "\n"
    docs_path.write_text(text, "utf-8")
