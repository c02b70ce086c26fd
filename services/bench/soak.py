"""`touchpoint bench --soak`: twice the target rates for five minutes, watching memory and errors.

Offered load (open loop, all at once): single-event ingest at 2 x 500 requests/s, events in
batches of 20 at 2 x 2,000 events/s, recommendations (20 candidates) at 2 x 500 requests/s.
Every 10 s it samples the resident memory of each service (its worker and consumer processes
included), Redis memory and the profile consumer's lag. Memory that keeps climbing under
constant load means an unbounded queue somewhere; errors are counted by status (429 and 503
are the documented overload answers).
"backlog" counts requests the generator did not send because 2,000 earlier ones were still
waiting or in flight (the service was not keeping up); "timeout" counts requests with no
answer within 5 s.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from services.bench import dataset, history_load, loadgen, report
from services.bench.ceilings import post_action
from services.bench.procfs import tree_rss_mib
from services.bench.system import SystemUnderTest, start_system

SOAK_START = "<!-- bench:soak:start -->"
SOAK_END = "<!-- bench:soak:end -->"
SAMPLE_EVERY_S = 10.0


# Documented fallbacks that answer instead of failing; the soak counts how often they did.
FALLBACK_COUNTERS = {
    "recommendations answered without a profile": (
        "recommender", "touchpoint_recommender_fallbacks_total"),
    "requests let through with the rate limiter bypassed": (
        "ingestion", "touchpoint_rate_limit_bypassed_total"),
    "recommendations let through with the rate limiter bypassed": (
        "recommender", "touchpoint_rate_limit_bypassed_total"),
}


def _fallback_totals(system: SystemUnderTest) -> dict[str, float | None]:
    return {label: system.metric_total(service, counter)
            for label, (service, counter) in FALLBACK_COUNTERS.items()}


def growth(samples: list[dict[str, Any]], name: str) -> float | None:
    """MiB gained by a process between the end of the first minute and the end of the run."""
    values = [s["rss_mib"].get(name) for s in samples if s["t_s"] >= 60]
    values = [v for v in values if v is not None]
    return round(values[-1] - values[0], 1) if len(values) >= 2 else None


def _loads(system: SystemUnderTest, now: datetime, seconds: float, factor: float,
           customers: list[str]) -> list[tuple[str, Any]]:
    loads: list[tuple[str, Any]] = []
    headers = system.auth_headers
    ingestion = system.endpoints.get("ingestion")
    if ingestion is not None:
        singles = dataset.single_bodies(dataset.live_events(now, 20_000, "soak1", 31))
        rate = 500 * factor
        loads.append((f"single events {rate:g} req/s", loadgen.open_loop(
            ingestion.host, ingestion.port,
            post_action(ingestion, "/v1/events", dataset.cycle_bodies(singles), headers),
            rate, seconds, timeout_s=5, max_pending=2000)))
        batches = dataset.batch_bodies(dataset.live_events(now, 40_000, "soak2", 32), 20)
        rate = 2000 * factor / 20
        loads.append((f"events in batches of 20, {rate * 20:g} events/s", loadgen.open_loop(
            ingestion.host, ingestion.port,
            post_action(ingestion, "/v1/events", dataset.cycle_bodies(batches), headers),
            rate, seconds, timeout_s=5, max_pending=2000)))
    recommender = system.endpoints.get("recommender")
    if recommender is not None:
        ids = [a["id"] for a in dataset.bench_actions()["actions"]][:20]
        rng = random.Random(3)
        bodies = [orjson.dumps({"customer_id": rng.choice(customers), "candidates": ids,
                                "k": 1}) for _ in range(5000)]
        rate = 500 * factor
        loads.append((f"recommendations {rate:g} req/s", loadgen.open_loop(
            recommender.host, recommender.port,
            post_action(recommender, "/v1/recommendations", lambda i: bodies[i % len(bodies)],
                        headers), rate, seconds, timeout_s=5, max_pending=2000)))
    return loads


def run_soak(root: Path, minutes: float = 5.0, factor: float = 2.0, customers: int = 20_000,
             write: bool = True, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(width=None if Console().is_terminal else 140)

    def say(message: str) -> None:
        console.print(f"[bold magenta]soak[/] {message}")

    data_dir = root / ".data" / "bench"
    actions_file = data_dir / "bench-actions.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    actions_file.write_text(json.dumps(dataset.bench_actions()), "utf-8")
    started_at = datetime.now(UTC)
    system = start_system(data_dir, {"ACTION_CATALOG_FILE": str(actions_file.resolve())}, say)
    samples: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    fallbacks: dict[str, int | None] = {}
    try:
        now = datetime.now(UTC)
        pace = None
        if system.pid("profile"):
            pace = history_load.PacedFold(system.settings, timeout_s=300,
                                          alive=lambda: system.pid("profile") is not None)
        produced = history_load.produce_history(system.settings, now, customers, pace)
        known = produced["identified_customers"] or ["c-0000000"]
        if pace is not None:
            pace.finish(produced["events"])
        seconds = minutes * 60
        loads = _loads(system, datetime.now(UTC), seconds, factor, known)
        if not loads:
            raise RuntimeError("no service to soak: ingestion and recommender are not running")
        say(f"offering {', '.join(name for name, _ in loads)} for {minutes:g} min")
        finished = threading.Event()
        outcome: dict[str, Any] = {}

        def drive() -> None:
            async def together():
                return await asyncio.gather(*(coroutine for _, coroutine in loads))
            try:
                outcome["runs"] = loadgen.run(together())
            finally:
                finished.set()

        driver = threading.Thread(target=drive, name="soak-load", daemon=True)
        fallbacks_before = _fallback_totals(system)
        t0 = time.monotonic()
        driver.start()
        group = history_load.GroupProgress(system.settings) if system.pid("profile") else None
        try:
            while not finished.wait(SAMPLE_EVERY_S if samples else 1.0):
                sample = {"t_s": round(time.monotonic() - t0, 1),
                          "rss_mib": {name: tree_rss_mib(pid)
                                      for name, pid in system.pids().items()},
                          "redis_used_mib": round(history_load.used_memory(
                              system.settings.redis_url) / 2**20, 1)}
                if group is not None:
                    sample["consumer_lag"] = group.end_offsets() - group.committed()
                samples.append(sample)
                console.print(f"  t={sample['t_s']:>5.0f}s " + " ".join(
                    f"{k}={v}MiB" for k, v in sample["rss_mib"].items())
                    + f" redis-data={sample['redis_used_mib']}MiB"
                    + (f" lag={sample['consumer_lag']}" if "consumer_lag" in sample else ""))
        finally:
            if group is not None:
                group.close()
        driver.join()
        for (name, _), run in zip(loads, outcome.get("runs", []), strict=False):
            results[name] = run.to_dict()
        fallbacks = {label: None if before is None or after is None else int(after - before)
                     for (label, before), after in zip(
                         fallbacks_before.items(), _fallback_totals(system).values(),
                         strict=True)}
    finally:
        system.stop()
    document = {"started_at": started_at.isoformat(timespec="seconds"), "minutes": minutes,
                "factor": factor, "customers": customers, "loads": results,
                "fallbacks": fallbacks,
                "samples": samples,
                "rss_growth_after_first_minute_mib": {
                    name: growth(samples, name) for name in (samples[0]["rss_mib"]
                                                             if samples else {})}}
    _print(document, console)
    if write:
        path = root / "bench" / "results" / f"soak-{started_at:%Y-%m-%d}.json"
        report.write_json(document, path)
        _update_docs(root / "docs" / "benchmarks.md", _markdown(document, path.relative_to(root)))
        say(f"written to {path.relative_to(root)} and docs/benchmarks.md")
    return document


def _error_breakdown(run: dict[str, Any]) -> str:
    errors = Counter({**run["statuses"], **run["failures"]})
    for success in ("200", "202"):
        errors.pop(success, None)
    return ", ".join(f"{k}: {v:,}" for k, v in errors.items()) or "-"


def _print(document: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Soak: x{document['factor']:g} target rates for "
                        f"{document['minutes']:g} min")
    for column in ("Load", "Offered", "OK", "Errors", "By status / failure", "p50 ms", "p99 ms"):
        table.add_column(column)
    for name, run in document["loads"].items():
        table.add_row(name, f"{run['scheduled']:,}", f"{run['ok']:,}", f"{run['errors']:,}",
                      _error_breakdown(run), f"{run['latency']['p50_ms'] or 0:.1f}",
                      f"{run['latency']['p99_ms'] or 0:.1f}")
    console.print(table)
    for label, count in document.get("fallbacks", {}).items():
        console.print(f"{label}: {'unknown' if count is None else f'{count:,}'}")
    console.print(f"RSS growth after the first minute (MiB): "
                  f"{document['rss_growth_after_first_minute_mib']}")


def _markdown(document: dict[str, Any], path: Path) -> str:
    lines = [f"Last soak: {document['started_at']}, x{document['factor']:g} the target rates for "
             f"{document['minutes']:g} minutes.", "",
             "| Load | Offered | OK | Errors | By status / failure | p50 ms | p99 ms |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    for name, run in document["loads"].items():
        lines.append(f"| {name} | {run['scheduled']:,} | {run['ok']:,} | {run['errors']:,} | "
                     f"{_error_breakdown(run)} | {run['latency']['p50_ms'] or 0:.1f} | "
                     f"{run['latency']['p99_ms'] or 0:.1f} |")
    fallbacks = document.get("fallbacks", {})
    if fallbacks:
        lines += ["", "Documented fallbacks during the load: " + "; ".join(
            f"{label}: {'unknown' if count is None else f'{count:,}'}"
            for label, count in fallbacks.items()) + "."]
    if document["samples"]:
        names = list(document["samples"][0]["rss_mib"])
        lines += ["", "Memory over time (resident MiB per service, its worker and consumer "
                  "processes included; Redis used memory):", "",
                  "| t (s) | " + " | ".join(names) + " | redis data | consumer lag |",
                  "| ---: " * (len(names) + 3) + "|"]
        step = max(1, len(document["samples"]) // 10)
        for sample in document["samples"][::step]:
            lines.append(f"| {sample['t_s']:.0f} | " + " | ".join(
                str(sample["rss_mib"].get(n)) for n in names)
                + f" | {sample['redis_used_mib']} | {sample.get('consumer_lag', '')} |")
    lines += ["", f"Raw figures: `{path}`."]
    return "\n".join(lines)


def _update_docs(docs_path: Path, section: str) -> None:
    text = docs_path.read_text("utf-8") if docs_path.exists() else "# Benchmarks\n"
    block = f"{SOAK_START}\n{section}\n{SOAK_END}"
    if SOAK_START in text and SOAK_END in text:
        before, rest = text.split(SOAK_START, 1)
        text = before + block + rest.split(SOAK_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Soak\n\n" + block + "\n"
    docs_path.write_text(text, "utf-8")
