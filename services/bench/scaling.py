"""Consumer throughput against the number of consumer processes (`touchpoint bench --scaling`).

On the 3-broker test cluster, for 1, 2, 4 and 6 profile consumer processes: the processes join
one fresh group on a fresh topic (the broker's default of 4 partitions) and a fresh Redis
namespace; once the group has settled, the same simulated history is produced onto the topic and
the fold is timed from the first committed progress to the last record. Each process reports
the partitions it was given: processes beyond the partition count get none.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from services.bench import dataset, history_load, report
from services.bench.procfs import cpu_seconds
from services.devstack.broker import EmbeddedBroker
from services.devstack.lifetime import die_with_parent
from services.devstack.redis import EmbeddedRedis
from shared.settings import Settings
from shared.touchpoints import load_catalog

SCALE_START = "<!-- bench:scaling:start -->"
SCALE_END = "<!-- bench:scaling:end -->"


def _run(settings: Settings, env: dict[str, str], processes: int, records: list,
         timeout_s: float) -> dict[str, Any]:
    children = []
    for _ in range(processes):
        children.append(subprocess.Popen(
            [sys.executable, "-u", "-m", "services.bench.consumer_process"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True, preexec_fn=die_with_parent))
    for child in children:
        assert child.stdout is not None
        child.stdout.readline()  # "ready"
    # Let the group settle (join, assignment) before the records arrive: the figure is the
    # steady fold rate, not the rebalance dance of processes joining one after another.
    time.sleep(8)
    history_load.produce_records(settings, iter(records))
    cpu_before = [cpu_seconds(c.pid) for c in children]
    try:
        fold = history_load.wait_for_fold(settings, len(records), timeout_s,
                                          alive=lambda: all(c.poll() is None for c in children))
        cpu = [round((cpu_seconds(c.pid) or 0) - (before or 0), 2)
               for c, before in zip(children, cpu_before, strict=True)]
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
    assigned = []
    for child in children:
        out, _ = child.communicate(timeout=30)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assigned.append(json.loads(lines[-1]) if lines else {"records": None, "partitions": []})
    fold.pop("timeline", None)
    for item, seconds in zip(assigned, cpu, strict=True):
        item["cpu_s"] = seconds
    # If each process had a core of its own, the busiest one would bound the fold.
    busiest = max(cpu) if cpu else 0
    projected = round(len(records) / busiest) if busiest else None
    return {"processes": processes, **fold, "per_process": assigned,
            "projected_events_per_s_one_core_each": projected}


def fold_runs(customers: int, counts: tuple[int, ...], say) -> tuple[int, list[dict[str, Any]]]:
    """Each count of consumer processes folding the same simulated history, alone on a fresh
    3-broker test cluster and Redis; returns the number of events and one result per count."""
    runs = []
    with EmbeddedBroker(num_brokers=3) as broker, EmbeddedRedis() as redis_server:
        suffix = uuid.uuid4().hex[:8]
        base = Settings(kafka_bootstrap_servers=broker.bootstrap_servers,
                        redis_url=redis_server.url,
                        topic_touchpoints=f"touchpoints.scale.{suffix}",
                        topic_decisions=f"decisions.scale.{suffix}")
        now = datetime.now(UTC)
        catalog = load_catalog()
        records = [record for history in dataset.history_simulator(now).customers(customers)
                   for record in dataset.history_records_of(history, catalog, now)]
        say(f"{len(records):,} events of {customers:,} customers")
        for count in counts:
            group = f"scale-{count}-{suffix}"
            settings = base.model_copy(update={
                "kafka_consumer_group": group, "redis_namespace": f"s{count}{suffix}",
                "topic_touchpoints": f"{base.topic_touchpoints}.{count}"})
            env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
                       REDIS_URL=settings.redis_url, TOPIC_TOUCHPOINTS=settings.topic_touchpoints,
                       TOPIC_DECISIONS=settings.topic_decisions, KAFKA_CONSUMER_GROUP=group,
                       REDIS_NAMESPACE=settings.redis_namespace)
            say(f"{count} consumer process(es)")
            runs.append(_run(settings, env, count, records, timeout_s=300))
            say(f"  -> {runs[-1].get('fold_events_per_s')} events/s")
    return len(records), runs


def run_scaling(root: Path, customers: int = 10_000, counts: tuple[int, ...] = (1, 2, 4, 6),
                write: bool = True, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(width=None if Console().is_terminal else 140)
    started_at = datetime.now(UTC)
    events, runs = fold_runs(customers, counts,
                             lambda message: console.print(f"[bold]scaling[/] {message}"))
    document = {"started_at": started_at.isoformat(timespec="seconds"),
                "events": events, "customers": customers, "partitions": 4,
                "cores": os.cpu_count(), "load_average": os.getloadavg(), "runs": runs}
    table = Table(title="Consumer throughput by process count (4 partitions)")
    for column in ("Processes", "Events/s", "Seconds", "Partitions per process",
                   "CPU s per process", "Projected events/s, a core each"):
        table.add_column(column)
    for run in runs:
        table.add_row(str(run["processes"]), f"{run.get('fold_events_per_s') or 0:,.0f}",
                      f"{run.get('drain_s', 0):.1f}",
                      " ".join(str(len(p["partitions"])) for p in run["per_process"]),
                      " ".join(f"{p.get('cpu_s', 0):.1f}" for p in run["per_process"]),
                      f"{run.get('projected_events_per_s_one_core_each') or 0:,}")
    console.print(table)
    if write:
        path = root / "bench" / "results" / f"scaling-{started_at:%Y-%m-%d}.json"
        report.write_json(document, path)
        report.update_docs(root / "docs" / "capacity.md",
                           markdown(document) + f"\n\nRaw figures: `{path.relative_to(root)}`.",
                           SCALE_START, SCALE_END, "Consumer scaling")
        console.print(f"written to {path.relative_to(root)} and docs/capacity.md")
    return document


def markdown(document: dict[str, Any]) -> str:
    lines = ["| Consumer processes | Events/s (measured) | Fold time (s) | Partitions per process "
             "| CPU s per process | Events/s projected, a core each |",
             "| ---: | ---: | ---: | --- | --- | ---: |"]
    for run in document["runs"]:
        partitions = " ".join(str(len(p["partitions"])) for p in run["per_process"])
        cpu = " ".join(f"{p.get('cpu_s', 0):.1f}" for p in run["per_process"])
        lines.append(f"| {run['processes']} | {run.get('fold_events_per_s') or 0:,.0f} | "
                     f"{run.get('drain_s', 0):.1f} | {partitions} | {cpu} | "
                     f"{run.get('projected_events_per_s_one_core_each') or 0:,} |")
    return "\n".join(lines)
