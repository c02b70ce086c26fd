"""The benchmark scenarios. Each returns an `Outcome`; a missing service is 'not available'."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib.util
import itertools
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.bench import dataset, loadgen
from services.bench.ceilings import post_action
from services.bench.stats import LatencySummary, RunResult
from services.bench.system import WEBHOOK_SECRET, Endpoint, SystemUnderTest

FALLBACKS = "touchpoint_recommender_fallbacks_total"


@dataclass
class Outcome:
    """One row of the results table."""

    name: str
    title: str
    status: str = "ok"  # ok | not available | failed
    result: str = ""
    value: float | None = None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    ceiling: str = ""
    share: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def not_available(name: str, title: str, reason: str) -> Outcome:
    return Outcome(name, title, status="not available", reason=reason)


@dataclass
class Plan:
    """Durations and sizes; `quick` shrinks everything for a smoke run."""

    duration_s: float = 12.0
    customers: int = 100_000
    single_rate: float = 500
    e2p_events_per_s: float = 2000
    e2p_batch: int = 20
    # One request in 20 carries a probe: with one in 4, the probes' own polling (some 1,000
    # profile reads a second) saturated the two cores and measured itself.
    e2p_probe_every: int = 20
    e2p_duration_factor: float = 2.0  # longer than the other scenarios, for enough probes
    recommendation_rate: float = 500
    # Each fixed-rate run is preceded by this much of the same load, not measured: the first
    # seconds after start-up (connection pools filling, caches, first code paths) had a p99
    # of 40-60 ms where the steady state has 4-9 ms.
    warmup_s: float = 4.0
    candidate_counts: tuple[int, ...] = (5, 20, 50)
    batch_size: int = 500
    batch_concurrency: int = 4
    closed_concurrency: int = 16
    dashboard_events: int = 1_000_000
    fold_timeout_s: float = 600.0
    alone_customers: int = 10_000  # the one-process fold
    alone_runs: int = 3
    dashboard_timeout_s: float = 300.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(duration_s=4.0, customers=2000, dashboard_events=20_000, warmup_s=1.0,
                   alone_customers=2000, alone_runs=1)


@dataclass
class Context:
    system: SystemUnderTest
    plan: Plan
    now: datetime
    ceilings: dict[str, Any]
    loaded_customers: list[str] = field(default_factory=list)

    def endpoint(self, name: str) -> Endpoint | None:
        return self.system.endpoints.get(name)

    @property
    def http_max(self) -> float | None:
        return self.ceilings.get("http", {}).get("max_requests_per_s")


def _fixed_rate(endpoint: Endpoint, action, rate: float, duration_s: float) -> RunResult:
    """The fixed-rate run, then a pause until the server has drained what it left behind
    (requests a client gave up on are still served)."""
    fixed = loadgen.run(loadgen.open_loop(endpoint.host, endpoint.port, action, rate,
                                          duration_s))
    loadgen.run(loadgen.settle(endpoint.host, endpoint.port))
    return fixed


def _warm_up(endpoint: Endpoint, action, rate: float, seconds: float) -> None:
    if seconds > 0:
        _fixed_rate(endpoint, action, rate, seconds)


def _maximum_rate(endpoint: Endpoint, action, concurrency: int, duration_s: float) -> RunResult:
    maximum = loadgen.run(loadgen.closed_loop(endpoint.host, endpoint.port, action,
                                              concurrency, duration_s))
    loadgen.run(loadgen.settle(endpoint.host, endpoint.port))
    return maximum


def _open_then_closed(endpoint: Endpoint, action, rate: float, duration_s: float,
                      concurrency: int, warmup_s: float) -> tuple[RunResult, RunResult]:
    _warm_up(endpoint, action, rate, warmup_s)
    return (_fixed_rate(endpoint, action, rate, duration_s),
            _maximum_rate(endpoint, action, concurrency, duration_s / 2))


def _counting(ctx: Context, service: str, counter: str,
              run: Callable[[], RunResult]) -> tuple[RunResult, int | None]:
    """`run()`, and how much a service's counter grew meanwhile (None if unreadable)."""
    before = ctx.system.metric_total(service, counter)
    result = run()
    after = ctx.system.metric_total(service, counter)
    return result, None if before is None or after is None else int(after - before)


def _latency_text(run: RunResult) -> str:
    latency = run.latency()
    return (f"p50 {latency.p50_ms:.1f} ms, p99 {latency.p99_ms:.1f} ms at "
            f"{run.target_rate:g}/s ({run.errors} errors)")


def single_ingest(ctx: Context) -> Outcome:
    title = "Single-event ingest"
    endpoint = ctx.endpoint("ingestion")
    if endpoint is None:
        return not_available("single_ingest", title, "ingestion service not running")
    plan = ctx.plan
    count = int(plan.single_rate * plan.duration_s)
    bodies = dataset.single_bodies(dataset.live_events(ctx.now, count, "s1", seed=11))
    action = post_action(endpoint, "/v1/events", dataset.cycle_bodies(bodies),
                         ctx.system.auth_headers)
    fixed, maximum = _open_then_closed(endpoint, action, plan.single_rate, plan.duration_s,
                                       plan.closed_concurrency, plan.warmup_s)
    p99 = fixed.latency().p99_ms
    share = maximum.achieved_rate / ctx.http_max if ctx.http_max else None
    return Outcome(
        "single_ingest", title, result=_latency_text(fixed) +
        f"; max {maximum.achieved_rate:,.0f} req/s", value=p99, unit="ms p99",
        target="p99 < 20 ms at 500 req/s", met=p99 < 20 and fixed.errors == 0,
        ceiling="empty endpoint req/s", share=share,
        data={"fixed_rate": fixed.to_dict(), "max_rate": maximum.to_dict()})


def batch_ingest(ctx: Context, backend: str = "kafka-python") -> Outcome:
    name = "batch_ingest" if backend == "kafka-python" else f"batch_ingest_{backend}"
    title = f"Batched ingest ({ctx.plan.batch_size}/request, {backend})"
    endpoint = ctx.endpoint("ingestion" if backend == "kafka-python" else f"ingestion-{backend}")
    if endpoint is None:
        return not_available(name, title, f"ingestion service ({backend}) not running")
    plan = ctx.plan
    events = dataset.live_events(ctx.now, plan.batch_size * 40, "b1", seed=12)
    bodies = dataset.batch_bodies(events, plan.batch_size)
    action = post_action(endpoint, "/v1/events", dataset.cycle_bodies(bodies),
                         ctx.system.auth_headers)
    run = loadgen.run(loadgen.closed_loop(endpoint.host, endpoint.port, action,
                                          plan.batch_concurrency, plan.duration_s))
    loadgen.run(loadgen.settle(endpoint.host, endpoint.port))
    run.items_per_request = plan.batch_size
    rate = run.items_per_s
    raw = ctx.ceilings.get("kafka", {}).get("produce_kafka_python", {}).get("messages_per_s")
    share = rate / raw if raw else None
    met = rate >= 10_000 and (share is None or share >= 0.5) and run.errors == 0
    latency = run.latency()
    return Outcome(
        name, title,
        result=f"{rate:,.0f} events/s ({run.achieved_rate:.1f} req/s, p50 "
        f"{latency.p50_ms:.0f} ms per request, {plan.batch_concurrency} clients, "
        f"{run.errors} errors)", value=rate, unit="events/s",
        target=">= 10,000 events/s and >= 50% of raw produce", met=met,
        ceiling="raw kafka-python produce", share=share, data={"max_rate": run.to_dict()})


FOLD_TARGET = ">= 10,000 events/s per consumer process"


def consumer_fold(plan: Plan, ceilings: dict[str, Any]) -> Outcome:
    """One profile consumer process folding a backlog with nothing else running, on a fresh
    test cluster and Redis: the rate a consumer process applies events at. `plan.alone_runs`
    runs; the median counts."""
    from services.bench import scaling  # it imports the report, which imports this module

    title = "Consumer fold (1 process, alone)"
    rates, runs = [], []
    for _ in range(plan.alone_runs):
        events, (run,) = scaling.fold_runs(plan.alone_customers, (1,), say=lambda _: None)
        runs.append({"events": events, **run})
        if not run.get("drained"):
            return Outcome("consumer_fold", title, status="failed",
                           reason="the consumer process did not fold the backlog in 300 s",
                           data={"runs": runs})
        rates.append(run["fold_events_per_s"])
    rate = statistics.median(rates)
    raw = ceilings.get("kafka", {}).get("consume_kafka_python", {}).get("messages_per_s")
    return Outcome(
        "consumer_fold", title,
        result=f"{rate:,.0f} events/s, median of " + ", ".join(f"{r:,.0f}" for r in rates)
        + f" ({runs[0]['events']:,} events of {plan.alone_customers:,} customers each)",
        value=rate, unit="events/s", target=FOLD_TARGET, met=rate >= 10_000,
        ceiling="raw kafka-python consume", share=rate / raw if raw else None,
        data={"runs": runs})


def service_fold(ctx: Context, load: dict[str, Any]) -> Outcome:
    """The profile consumer's rate while the history loads, the analytics consumer folding the
    same events alongside on the same cores and Redis: context, not the target's measure."""
    title = "Profile fold while loading (analytics alongside)"
    if not load.get("fold_events_per_s"):
        reason = load.get("reason") or "profile consumer did not drain the loaded history"
        status = "not available" if "profile" in ctx.system.unavailable else "failed"
        return Outcome("service_fold", title, status=status, reason=reason, data=load)
    rate = load["fold_events_per_s"]
    raw = ctx.ceilings.get("kafka", {}).get("consume_kafka_python", {}).get("messages_per_s")
    detail = (load["reason"] if not load.get("drained") else
              f"{load['events']:,} events of {load['customers']:,} customers in "
              f"{load['drain_s']:.1f} s")
    return Outcome("service_fold", title, result=f"{rate:,.0f} events/s ({detail})",
                   value=rate, unit="events/s", ceiling="raw kafka-python consume",
                   share=rate / raw if raw else None, data=load)


# A probe reads its profile again after 5 ms, then 1.5 times longer each time, up to 50 ms
# while the delay is within the target (a delay is over-stated by at most one pause), and up to
# 250 ms once it is past the target: late profiles then cost a few reads a second each instead
# of twenty, which had loaded the very service being measured as soon as it fell behind.
PROBE_FIRST_PAUSE_S = 0.005
PROBE_MAX_PAUSE_S = 0.05
PROBE_LATE_AFTER_S = 0.25
PROBE_LATE_PAUSE_S = 0.25
PROBE_LIMIT_S = 5.0


def event_to_profile(ctx: Context) -> Outcome:
    """POST -> visible in GET /v1/profiles/{id}: probes are first events of new customers,
    so 'visible' is the profile answering 200 instead of 404."""
    title = "Event-to-profile delay"
    ingestion, profile = ctx.endpoint("ingestion"), ctx.endpoint("profile")
    if ingestion is None or profile is None:
        return not_available("event_to_profile", title, "ingestion or profile service not running")
    plan = ctx.plan
    rate = plan.e2p_events_per_s / plan.e2p_batch
    duration_s = plan.duration_s * plan.e2p_duration_factor
    requests = int(rate * duration_s)
    pool = [e for e in dataset.live_events(ctx.now, requests * plan.e2p_batch * 2, "e1", seed=13)
            if "customer_id" in e]
    rng = random.Random(5)
    known = ctx.loaded_customers or ["c-0000000"]
    # New event ids and probe customers on every call: a repeated run must not meet its own
    # earlier events as duplicates and its probes as profiles that already exist.
    stamp = f"{int(time.time())}{uuid.uuid4().hex[:6]}"

    def batches(count: int, tag: str, probe_every: int) -> tuple[list[bytes], dict[int, str]]:
        bodies, probes = [], {}
        for i in range(count):
            batch = []
            for j in range(plan.e2p_batch):
                event = dict(pool[(i * plan.e2p_batch + j) % len(pool)])
                event.pop("anonymous_id", None)
                event["event_id"] = f"{tag}-{stamp}-{i}-{j}"
                event["customer_id"] = rng.choice(known)
                batch.append(event)
            if probe_every and i % probe_every == 0:
                probes[i] = batch[0]["customer_id"] = f"probe-{stamp}-{i}"
            bodies.append(orjson.dumps({"events": batch}))
        return bodies, probes

    bodies, probes = batches(requests, "e2p", plan.e2p_probe_every)
    delays: list[float] = []
    missing: list[str] = []
    headers = {"Content-Type": "application/json", **ctx.system.auth_headers}
    poll_headers = ctx.system.auth_headers
    profile_idle: list[loadgen.Connection] = []
    probing: set[asyncio.Task] = set()

    async def probe(customer: str, intended: float) -> None:
        reader = profile_idle.pop() if profile_idle else loadgen.Connection(profile.host,
                                                                           profile.port)
        try:
            deadline = time.perf_counter() + PROBE_LIMIT_S
            pause = PROBE_FIRST_PAUSE_S
            while time.perf_counter() < deadline:
                try:
                    answer = await reader.request("GET", f"/v1/profiles/{customer}",
                                                  headers=poll_headers)
                except (OSError, loadgen.HttpError):
                    reader.close()
                    answer = None
                if answer is not None and answer.status == 200:
                    delays.append(time.perf_counter() - intended)
                    return
                # Backing off keeps the probes from loading the service they measure.
                await asyncio.sleep(pause)
                late = time.perf_counter() - intended > PROBE_LATE_AFTER_S
                pause = min(pause * 1.5, PROBE_LATE_PAUSE_S if late else PROBE_MAX_PAUSE_S)
            missing.append(customer)
        finally:
            profile_idle.append(reader)

    async def action(index: int, intended: float, connection: loadgen.Connection) -> int:
        payload = loadgen.build_request("POST", "/v1/events", connection.host_header,
                                        bodies[index], headers)
        status = (await connection.send(payload)).status
        customer = probes.get(index)
        if customer is not None and status == 202:
            # Polled on a task of its own: the POST's latency is the POST's alone.
            probing.add(asyncio.create_task(probe(customer, intended)))
        return status

    async def measured_run() -> RunResult:
        run = await loadgen.open_loop(ingestion.host, ingestion.port, action, rate,
                                      duration_s, timeout_s=8)
        if probing:
            await asyncio.wait(probing)
        return run

    # The same load without probes first, unmeasured, as before the other fixed-rate runs.
    warm_bodies, _ = batches(int(rate * plan.warmup_s), "e2p-warm", 0)
    _warm_up(ingestion, post_action(ingestion, "/v1/events",
                                    lambda i: warm_bodies[i % len(warm_bodies)], headers),
             rate, plan.warmup_s)
    run = loadgen.run(measured_run())
    loadgen.run(loadgen.settle(ingestion.host, ingestion.port))
    run.items_per_request = plan.e2p_batch
    summary = LatencySummary.of(delays)
    met = summary.count > 0 and summary.p99_ms < 250 and not missing and run.errors == 0
    return Outcome(
        "event_to_profile", title,
        result=f"p50 {summary.p50_ms:.0f} ms, p99 {summary.p99_ms:.0f} ms at "
        f"{plan.e2p_events_per_s:,.0f} events/s ({summary.count} probes, {len(missing)} not "
        f"visible in {PROBE_LIMIT_S:g} s, {run.errors} errors; POST p99 "
        f"{run.latency().p99_ms:.0f} ms)", value=summary.p99_ms, unit="ms p99",
        target="p99 < 250 ms at 2,000 events/s", met=met,
        data={"ingest": run.to_dict(), "probes": summary.__dict__, "not_visible": len(missing),
              "poll_pause_ms": [PROBE_FIRST_PAUSE_S * 1000, PROBE_MAX_PAUSE_S * 1000,
                                PROBE_LATE_PAUSE_S * 1000]})


def recommendations(ctx: Context, candidates: int) -> Outcome:
    name, title = f"recommend_{candidates}", f"Recommendation, {candidates} candidates"
    endpoint = ctx.endpoint("recommender")
    if endpoint is None:
        return not_available(name, title, "recommender service not running")
    plan = ctx.plan
    ids = [a["id"] for a in dataset.bench_actions()["actions"]][:candidates]
    rng = random.Random(candidates)
    known = ctx.loaded_customers or [f"c-{n:07d}" for n in range(1000)]
    bodies = [orjson.dumps({"customer_id": rng.choice(known), "candidates": ids, "k": 1,
                            "context": {"locale": "vi"}}) for _ in range(5000)]
    action = post_action(endpoint, "/v1/recommendations", lambda i: bodies[i % len(bodies)],
                         ctx.system.auth_headers)
    _warm_up(endpoint, action, plan.recommendation_rate, plan.warmup_s)
    # A degraded answer (profile not read in time) is fast and would flatter the latency.
    fixed, degraded = _counting(ctx, "recommender", FALLBACKS, lambda: _fixed_rate(
        endpoint, action, plan.recommendation_rate, plan.duration_s))
    maximum, degraded_at_max = _counting(ctx, "recommender", FALLBACKS, lambda: _maximum_rate(
        endpoint, action, plan.closed_concurrency, plan.duration_s / 2))
    p99 = fixed.latency().p99_ms
    share = maximum.achieved_rate / ctx.http_max if ctx.http_max else None
    outcome = Outcome(
        name, title, result=_latency_text(fixed) + f"; max {maximum.achieved_rate:,.0f} req/s; "
        f"degraded answers {_count_text(degraded)} at {plan.recommendation_rate:g}/s, "
        f"{_count_text(degraded_at_max)} at the maximum",
        value=p99, unit="ms p99", ceiling="empty endpoint req/s", share=share,
        data={"fixed_rate": fixed.to_dict(), "max_rate": maximum.to_dict(),
              "degraded_at_fixed_rate": degraded, "degraded_at_max_rate": degraded_at_max})
    if candidates == 20:
        outcome.target = ("p99 < 10 ms at 500 req/s, no degraded answers; "
                          "max >= 40% of empty endpoint")
        outcome.met = (p99 < 10 and fixed.errors == 0 and degraded == 0
                       and (share is None or share >= 0.4))
    return outcome


def _count_text(count: int | None) -> str:
    return "unknown" if count is None else f"{count:,}"


def webhook_ingest(ctx: Context) -> Outcome:
    title = "Webhook ingest (Shopify orders)"
    endpoint = ctx.endpoint("ingestion")
    if endpoint is None:
        return not_available("webhook_ingest", title, "ingestion service not running")
    plan = ctx.plan
    rate = 200.0
    signed = []
    for n in range(int(rate * plan.duration_s) + 20_000):
        body, headers = dataset.shopify_order(ctx.now, n)
        headers["X-Shopify-Hmac-Sha256"] = base64.b64encode(
            hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        headers["Content-Type"] = "application/json"
        signed.append(loadgen.build_request("POST", "/v1/webhooks/shopify",
                                            f"{endpoint.host}:{endpoint.port}", body, headers))
    counter = itertools.count()

    async def action(index: int, intended: float, connection: loadgen.Connection) -> int:
        return (await connection.send(signed[next(counter) % len(signed)])).status

    fixed, maximum = _open_then_closed(endpoint, action, rate, plan.duration_s,
                                       plan.closed_concurrency, plan.warmup_s)
    share = maximum.achieved_rate / ctx.http_max if ctx.http_max else None
    if fixed.ok == 0:
        return Outcome("webhook_ingest", title, status="failed",
                       reason=f"no request accepted: statuses {dict(fixed.statuses)}",
                       data={"fixed_rate": fixed.to_dict()})
    return Outcome(
        "webhook_ingest", title,
        result=_latency_text(fixed) + f"; max {maximum.achieved_rate:,.0f} req/s",
        value=maximum.achieved_rate, unit="req/s", ceiling="empty endpoint req/s", share=share,
        data={"fixed_rate": fixed.to_dict(), "max_rate": maximum.to_dict()})


def dashboard(ctx: Context) -> Outcome:
    """The analytics team's hook, in a child process so that a slow load cannot stall the run."""
    title = f"Dashboard API ({ctx.plan.dashboard_events:,} events)"
    if importlib.util.find_spec("services.profiles.analytics.bench") is None:
        return not_available("dashboard", title, "analytics benchmark hook missing")
    env = dict(ctx.system.stack.env, REDIS_NAMESPACE="benchdash")
    command = [sys.executable, "-m", "services.bench.dashboard_process",
               str(ctx.plan.dashboard_events)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=ctx.plan.dashboard_timeout_s)
    except subprocess.TimeoutExpired:
        return Outcome("dashboard", title, status="failed",
                       reason=f"loading and timing took more than "
                              f"{ctx.plan.dashboard_timeout_s:.0f} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return Outcome("dashboard", title, status="failed",
                       reason=(done.stderr.strip().splitlines() or ["no output"])[-1][:300])
    report = json.loads(lines[-1])
    slowest = max(call["max_s"] for call in report["calls"].values()) * 1000
    return Outcome(
        "dashboard", title, result=f"slowest call {slowest:,.0f} ms over "
        f"{len(report['calls'])} calls (load {report['events'] / report['load_s']:,.0f} "
        "events/s)", value=slowest, unit="ms max",
        target="every call < 1 s", met=slowest < 1000, data=report)


def memory_per_customer(ctx: Context, load: dict[str, Any]) -> Outcome:
    title = "Redis memory per customer"
    if "memory" not in load:
        return not_available("memory_per_customer", title,
                             "history not folded into profiles (profile consumer missing)")
    memory = load["memory"]
    per_customer = memory["bytes_per_customer"]
    customers = memory["divided_by"]
    families = load["memory"].get("by_family") or {}
    keys = ("; of which " + ", ".join(
        f"{name} {entry['bytes_per_customer']:,.0f}" for name, entry in families.items()
        if entry["bytes_per_customer"] >= 1) if families else "")
    # The target is about the full population: a load cut short by the fold budget does not
    # demonstrate it, whatever the figure.
    short = load["customers"] < ctx.plan.customers
    return Outcome(
        "memory_per_customer", title,
        result=f"{per_customer:,.0f} bytes per customer ({customers:,} customers"
        f"{'' if memory['complete'] else ' folded so far'}, "
        f"{load['events'] / load['customers']:.1f} events each; "
        f"{memory['used_memory_delta'] / 2**20:,.0f} MiB in all{keys})"
        + (f"; only {load['customers']:,} of {ctx.plan.customers:,} customers loaded, so the "
           "target is not shown" if short else ""),
        value=per_customer, unit="bytes", target="<= 2 KiB per customer",
        met=per_customer <= 2048 and not short, data=load["memory"])


def now_utc() -> datetime:
    return datetime.now(UTC)
