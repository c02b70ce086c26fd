"""Benchmark hook: load synthetic events into the aggregates, then time every dashboard call.

The load step applies the same Lua scripts the consumer uses, pipelined in batches straight
into Redis (it bypasses Kafka: the consumer's cost is measured by the profile benchmarks; this
one measures the aggregates and the API answering over them). Each API call is then made
`repeats` times through the real FastAPI stack (in-process ASGI client) and timed; the first
call of each is cold (attribution answers are then kept for `attribution_cache_s`).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rich.progress import Progress

from services.profiles.analytics import api
from services.profiles.analytics.demo_data import batches, demo_data
from services.profiles.analytics.store import AnalyticsStore
from services.web.auth import install_auth
from services.web.errors import install_error_handlers
from shared.settings import Settings

BATCH = 2000


@dataclass
class BenchReport:
    events: int
    decisions: int
    generate_s: float
    load_s: float
    calls: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def slowest_s(self) -> float:
        return max((c["max_s"] for c in self.calls.values()), default=0.0)


def dashboard_calls(day_from: str, day_to: str) -> dict[str, str]:
    """The calls the dashboard makes on load and on the usual filter changes."""
    span = f"from={day_from}&to={day_to}"
    return {
        "touchpoints": f"/v1/analytics/touchpoints?{span}",
        "touchpoints phase+segment": f"/v1/analytics/touchpoints?{span}&phase=purchase"
        "&segment=prospect",
        "attribution channel": f"/v1/analytics/attribution?{span}",
        "attribution touchpoint": f"/v1/analytics/attribution?{span}&key=touchpoint",
        "journeys phase": f"/v1/analytics/journeys?{span}",
        "journeys step+channel": f"/v1/analytics/journeys?{span}&facet=journey_step"
        "&channel=zalo",
        "recommendations": f"/v1/analytics/recommendations?{span}",
        "live": "/v1/analytics/live",
        "dashboard page": "/dashboard",
    }


def bench_app(settings: Settings, client: redis.Redis) -> FastAPI:
    """The analytics routes in-process; keys are off (the caller is the benchmark itself)."""
    app = FastAPI()
    install_error_handlers(app)
    install_auth(app, settings.model_copy(update={"auth_disabled": True, "api_keys_file": None}))
    app.state.analytics_reader = api.build_reader(settings, client)
    app.include_router(api.router)
    return app


def load(store: AnalyticsStore, n_events: int, end: datetime, show_progress: bool = True):
    started = time.perf_counter()
    data = demo_data(n_events, int(end.timestamp() * 1000))
    generated = time.perf_counter()
    now_s = int(time.time())
    with Progress(disable=not show_progress) as progress:
        task = progress.add_task("loading events", total=len(data.events))
        store.record([], data.decisions, now_s)
        for chunk in batches(data.events, BATCH):
            store.record(chunk, [], now_s)
            progress.advance(task, len(chunk))
    store.close_quiet_journeys()
    return data, generated - started, time.perf_counter() - generated


def run_bench(
    settings: Settings, client: redis.Redis, n_events: int = 1_000_000, repeats: int = 5,
    show_progress: bool = True,
) -> BenchReport:
    end = datetime.now(UTC).replace(microsecond=0)
    store = api.build_reader(settings, client).store
    data, generate_s, load_s = load(store, n_events, end, show_progress)
    report = BenchReport(len(data.events), len(data.decisions), generate_s, load_s)
    day_to = end.date()
    day_from = day_to - timedelta(days=89)
    with TestClient(bench_app(settings, client)) as http:
        for name, url in dashboard_calls(day_from.isoformat(), day_to.isoformat()).items():
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                response = http.get(url)
                times.append(time.perf_counter() - started)
                response.raise_for_status()
            report.calls[name] = {
                "first_s": times[0], "median_s": statistics.median(times), "max_s": max(times),
                "bytes": len(response.content),
            }
    return report


def format_report(report: BenchReport) -> str:
    lines = [
        f"events loaded: {report.events:,} (+{report.decisions:,} decisions); "
        f"generated in {report.generate_s:.1f} s, loaded in {report.load_s:.1f} s "
        f"({report.events / report.load_s:,.0f} events/s)",
        "",
        "| call | first | median | max | response |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, c in report.calls.items():
        lines.append(
            f"| {name} | {c['first_s'] * 1000:.0f} ms | {c['median_s'] * 1000:.0f} ms | "
            f"{c['max_s'] * 1000:.0f} ms | {c['bytes'] / 1024:.0f} KiB |"
        )
    return "\n".join(lines)
