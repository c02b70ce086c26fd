"""The whole benchmark run: system up, ceilings, history load, scenarios, results."""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from services.bench import (
    capacity,
    ceilings,
    dataset,
    history_load,
    ingest_costs,
    report,
    scenarios,
)
from services.bench.scenarios import Context, Outcome, Plan
from services.bench.system import SystemUnderTest, start_system
from services.devstack.redis import free_port
from shared.touchpoints import load_catalog

NOISE_NOTE = (
    "All services, Redis, the broker and the load generator share this machine's cores; the "
    "load generator's own CPU time is part of every figure. Numbers taken while other "
    "processes use the CPU are noisy: see the load average."
)


def measure_ceilings(system: SystemUnderTest, plan: Plan, say) -> dict[str, Any]:
    results: dict[str, Any] = {}
    say("ceiling: empty FastAPI endpoint")
    results["http"] = _guard(lambda: ceilings.http_ceiling(
        system, plan.single_rate, plan.duration_s / 2, plan.closed_concurrency))
    now = datetime.now(UTC)
    simulator = dataset.history_simulator(now, prefix="k")
    catalog = load_catalog(system.settings.touchpoint_catalog_file)
    records = []
    for history in simulator.customers(4000 if plan.customers >= 10_000 else 800):
        records.extend(dataset.history_records_of(history, catalog, now))
    say(f"ceiling: raw Kafka produce and consume ({len(records):,} event records)")
    kafka: dict[str, Any] = {}
    settings = system.settings
    kafka["produce_kafka_python"] = _guard(lambda: ceilings.kafka_produce_ceiling(settings,
                                                                                  records))
    kafka["produce_kafka_python_uncompressed"] = _guard(
        lambda: ceilings.kafka_produce_ceiling(settings, records, "none"))
    kafka["produce_confluent"] = _guard(lambda: ceilings.confluent_produce_ceiling(settings,
                                                                                   records))
    topic = kafka["produce_kafka_python"].get("topic")
    if topic:
        kafka["consume_kafka_python"] = _guard(
            lambda: ceilings.kafka_consume_ceiling(settings, topic, len(records) + 1))
    results["kafka"] = kafka
    say("ceiling: pipelined Redis")
    results["redis"] = _guard(lambda: ceilings.redis_ceiling(settings.redis_url))
    say("ceiling: bare model predict")
    results["model"] = _guard(ceilings.model_ceiling)
    say("ingest CPU cost per event, step by step")
    results["ingest_costs"] = _guard(lambda: ingest_costs.measure(
        settings, batches=20 if plan.customers >= 10_000 else 4))
    return results


def _guard(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return call()
    except Exception as exc:  # a failed ceiling is reported, not fatal
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}


def load_history(system: SystemUnderTest, plan: Plan, now: datetime, say) -> dict[str, Any]:
    """The profile service starts on an empty Redis, then the histories go onto Kafka no
    faster than it folds them (the embedded broker keeps only the latest records)."""
    settings = system.settings
    memory_before = history_load.used_memory(settings.redis_url)
    history_load.reset_command_stats(settings.redis_url)
    started = time.monotonic()
    profile_up = system.start_service("profile") is not None
    pace = None
    if profile_up:
        say(f"profile service up in {time.monotonic() - started:.1f} s; loading and folding "
            f"{plan.customers:,} customers' histories")
        pace = history_load.PacedFold(settings, timeout_s=plan.fold_timeout_s,
                                      alive=lambda: system.pid("profile") is not None,
                                      other_groups=(settings.analytics_consumer_group,))
    produced = history_load.produce_history(settings, now, plan.customers, pace)
    load: dict[str, Any] = {"customers": produced["customers"], "events": produced["events"],
                            "produce_s": produced["produce_s"]}
    if pace is None:
        load.update(drained=False, reason=f"profile service: {system.unavailable['profile']}")
        return {**load, "identified": produced["identified_customers"]}
    fold = pace.finish(produced["events"])
    say(f"{produced['events']:,} events of {produced['customers']:,} customers produced and "
        f"folded in {fold.get('drain_s', 0):.1f} s")
    if produced["customers"] < plan.customers:
        say(f"  the fold budget of {plan.fold_timeout_s:.0f} s ran out: "
            f"{produced['customers']:,} of {plan.customers:,} customers loaded")
    load.update(fold)
    # Server time per command during the fold: how much of it Redis itself spends.
    load["redis_commands"] = history_load.command_stats(settings.redis_url)
    # The analytics aggregates belong in the memory figure: wait for them too.
    analytics_started = time.monotonic()
    catch_up(system, say, timeout_s=plan.fold_timeout_s)
    load["analytics_catch_up_s"] = round(time.monotonic() - analytics_started, 1)
    closing = history_load.wait_for_closed_journeys(
        settings, plan.fold_timeout_s, alive=lambda: system.pid("profile") is not None)
    load["analytics_closing"] = closing
    if closing["quiet_journeys"]:
        say(f"analytics closed {closing['quiet_journeys'] - closing['left']:,} of "
            f"{closing['quiet_journeys']:,} quiet journeys in {closing['seconds']:.1f} s")
    if fold.get("fold_events_per_s"):
        memory_after = history_load.used_memory(settings.redis_url)
        subjects = history_load.count_profiles(settings)
        delta = memory_after - memory_before
        # A partial fold is divided by the people folded so far (profile keys present).
        people = (produced["customers"] if fold.get("drained")
                  else max(1, sum(subjects.values())))
        load["memory"] = {"used_memory_before": memory_before, "used_memory_after": memory_after,
                          "used_memory_delta": delta, "profiles": subjects,
                          "by_family": history_load.memory_by_family(settings, people),
                          "divided_by": people, "complete": bool(fold.get("drained")),
                          "bytes_per_customer": round(delta / people, 1)}
    return {**load, "identified": produced["identified_customers"]}


def catch_up(system: SystemUnderTest, say, timeout_s: float = 60) -> None:
    """Waits for the profile and analytics consumers to fold what earlier steps sent, so
    their backlog does not compete with the next scenario."""
    if system.pid("profile") is None:
        return
    settings = system.settings
    for name, group in (("profile", settings.kafka_consumer_group),
                        ("analytics", settings.analytics_consumer_group)):
        state = history_load.wait_for_fold(
            settings, 0, timeout_s, alive=lambda: system.pid("profile") is not None,
            group_id=group, label=f"{name} consumer catching up")
        if not state.get("drained"):
            say(f"{name} consumer still behind: {state.get('reason')}")


def run_suite(plan: Plan, mode: str, root: Path, write_docs: bool = True,
              console: Console | None = None) -> dict[str, Any]:
    # Wide enough for the table when the output is a file or a pipe, not a terminal.
    console = console or Console(width=None if Console().is_terminal else 160)

    def say(message: str) -> None:
        console.print(f"[bold cyan]bench[/] {message}")

    started_at = datetime.now(UTC)
    started = time.monotonic()
    machine = ceilings.machine()
    data_dir = root / ".data" / "bench"
    actions_file = data_dir / "bench-actions.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    actions_file.write_text(json.dumps(dataset.bench_actions()), "utf-8")
    system = start_system(data_dir, {"ACTION_CATALOG_FILE": str(actions_file.resolve())}, say,
                          defer=("profile",))
    outcomes: list[Outcome] = []
    try:
        found = measure_ceilings(system, plan, say)
        now = datetime.now(UTC)
        load = load_history(system, plan, now, say)
        ctx = Context(system, plan, now, found, loaded_customers=load.pop("identified"))
        steps: list[tuple[str, Callable[[], Outcome]]] = [
            ("profile fold while loading", lambda: scenarios.service_fold(ctx, load)),
            ("memory per customer", lambda: scenarios.memory_per_customer(ctx, load)),
            ("single-event ingest", lambda: scenarios.single_ingest(ctx)),
            ("event-to-profile delay", lambda: _caught_up(system, say,
                                                      lambda: scenarios.event_to_profile(ctx))),
        ]
        for position, count in enumerate(plan.candidate_counts):
            # The first one waits until the event-to-profile backlog is folded.
            steps.append((f"recommendations, {count} candidates",
                          lambda count=count, first=position == 0: _caught_up(
                              system, say, lambda: scenarios.recommendations(ctx, count))
                          if first else scenarios.recommendations(ctx, count)))
        steps += [
            ("webhook ingest", lambda: scenarios.webhook_ingest(ctx)),
            # Last of the HTTP scenarios: they leave a backlog the consumer folds for a while.
            ("batched ingest", lambda: scenarios.batch_ingest(ctx)),
            ("batched ingest, confluent-kafka producer",
             lambda: _with_confluent_ingestion(system, say, lambda: scenarios.batch_ingest(
                 ctx, "confluent"))),
            # The batched runs leave a backlog; its folding would slow the dashboard's load.
            ("dashboard API", lambda: _caught_up(system, say, lambda: scenarios.dashboard(ctx))),
        ]
        for label, step in steps:
            say(f"scenario: {label}")
            ctx.now = datetime.now(UTC)
            outcomes.append(_run_step(label, step))
            item = outcomes[-1]
            say(f"  -> {item.result if item.status == 'ok' else item.status + ': ' + item.reason}")
    finally:
        system.stop()
    # With the system stopped, nothing else competes for the cores.
    say("scenario: consumer fold, one process alone")
    outcomes.insert(0, _run_step("consumer fold", lambda: scenarios.consumer_fold(plan, found)))
    say(f"  -> {outcomes[0].result if outcomes[0].status == 'ok' else outcomes[0].reason}")
    results_file = root / "bench" / "results" / f"{started_at:%Y-%m-%d}.json"
    document = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "mode": mode,
        "machine": machine,
        "load_average_at_end": os.getloadavg(),
        "plan": plan.__dict__,
        "recommender_workers": system.settings.recommender_workers,
        "ceilings": found,
        "history_load": load,
        "scenarios": [o.to_dict() for o in outcomes],
        "notes": [NOISE_NOTE],
        "results_file": str(results_file.relative_to(root)),
    }
    report.print_tables(outcomes, found, machine, console)
    if write_docs:
        report.write_json(document, results_file)
        report.update_docs(root / "docs" / "benchmarks.md",
                           report.markdown_results(report.clean(document)))
        _update_capacity(root, document)
        say(f"results written to {results_file.relative_to(root)}, docs/benchmarks.md and "
            "docs/capacity.md")
    return document


def _update_capacity(root: Path, document: dict[str, Any]) -> None:
    try:
        measured = capacity.measured_from_results(report.clean(document))
    except (KeyError, TypeError, ValueError):
        return  # a scenario the model needs did not run
    report.update_docs(root / "docs" / "capacity.md",
                       capacity.markdown(measured, document["results_file"]),
                       capacity.CAPACITY_START, capacity.CAPACITY_END, "Sizing")


def _with_confluent_ingestion(system: SystemUnderTest, say,
                              step: Callable[[], Outcome]) -> Outcome:
    """Runs `step` with the ingestion service on the confluent-kafka producer backend."""
    if system.pid("ingestion") is None:
        return step()
    port = free_port()
    env = dict(system.stack.env, INGESTION_PORT=str(port))
    try:
        system.start_process("ingestion-confluent", "services.bench.ingestion_confluent", port,
                             env)
    except RuntimeError as exc:
        say(f"ingestion with confluent-kafka did not start: {exc}")
        return step()
    try:
        return step()
    finally:
        process = system.stack.processes.pop("ingestion-confluent")
        system.endpoints.pop("ingestion-confluent", None)
        process.terminate()
        process.wait(timeout=15)


def _caught_up(system: SystemUnderTest, say, step: Callable[[], Outcome]) -> Outcome:
    """Runs `step` once the profile consumer has folded everything sent so far."""
    catch_up(system, say)
    return step()


def _run_step(label: str, step: Callable[[], Outcome]) -> Outcome:
    try:
        return step()
    except Exception as exc:  # one broken scenario must not hide the others' results
        return Outcome(label.replace(" ", "_"), label, status="failed",
                       reason=f"{type(exc).__name__}: {exc}",
                       data={"traceback": traceback.format_exc(limit=5)})
