"""`touchpoint demo`: the whole system working, and learning, against running services.

Only wiring lives here: read the settings, the API key and the local stack file (broker address
and webhook signing secrets written by `touchpoint run`), build the HTTP client, run the session
and print the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from services.demo.session import DemoOptions, DemoSession
from services.demo.summary import Summary, render
from services.demo.transport import DemoError, Endpoints, Http
from shared.settings import Settings, load_settings
from shared.touchpoints import TouchpointCatalog, load_catalog

STACK_FILE = "dev-stack.json"


def _api_key(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.api_key:
        return args.api_key
    path = settings.data_dir / "dev-api-key"
    return path.read_text("utf-8").strip() if path.exists() else None


def _stack(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    path = Path(args.stack_file) if args.stack_file else settings.data_dir / STACK_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoError(f"cannot read {path}: {exc}") from exc


def _endpoint(value: str | None, settings: Settings, port: int) -> str:
    return (value or f"http://{settings.host}:{port}").rstrip("/")


async def _run(args: argparse.Namespace, console: Console) -> int:
    settings = load_settings()
    stack = _stack(args, settings)
    overrides: dict[str, Any] = {}
    bootstrap = args.kafka_bootstrap_servers or stack.get("kafka_bootstrap_servers")
    if bootstrap:
        overrides["kafka_bootstrap_servers"] = bootstrap
    if args.registry:
        overrides["model_registry_dir"] = Path(args.registry)
    training_settings = load_settings(**overrides) if overrides else settings
    endpoints = Endpoints(
        ingestion=_endpoint(args.ingestion_url, settings, settings.ingestion_port),
        profile=_endpoint(args.profile_url, settings, settings.profile_port),
        recommender=_endpoint(args.recommender_url, settings, settings.recommender_port),
        api_key=_api_key(args, settings),
    )
    options = DemoOptions(customers=args.customers, rounds=args.rounds, seed=args.seed,
                          concurrency=args.concurrency, evaluation_share=args.evaluation_share,
                          webhook_days=args.webhook_days,
                          webhook_secrets=dict(stack.get("webhook_secrets") or {}))
    summary = await run_demo(endpoints, options, load_catalog(settings.touchpoint_catalog_file),
                             training_settings, console)
    render(summary, console)
    if args.json:
        Path(args.json).write_text(json.dumps(summary_dict(summary), indent=2), "utf-8")
    ok = summary.events_accepted == summary.events_sent and summary.training.promoted
    return 0 if ok else 1


async def run_demo(endpoints: Endpoints, options: DemoOptions, catalog: TouchpointCatalog,
                   training_settings: Settings, console: Console) -> Summary:
    """One run with live progress bars on `console`; returns what it measured."""
    http = Http(endpoints, concurrency=options.concurrency)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    try:
        session = DemoSession(http, options, catalog, training_settings, progress)
        await session.check_services()
        with progress:
            return await session.run()
    finally:
        await http.aclose()


def summary_dict(summary: Summary) -> dict[str, Any]:
    t = summary.training
    return {
        "customers": summary.customers,
        "phases": summary.phases,
        "events_sent": summary.events_sent,
        "events_accepted": summary.events_accepted,
        "api_events": summary.api_events,
        "webhook_events": summary.webhook_events,
        "webhook_deliveries": summary.webhook_deliveries,
        "decisions": summary.decisions,
        "rounds": [{
            "label": r.label, "decisions": r.decisions, "holdout": r.holdout.customers,
            "served_by": {f"{v} ({p})": n for (v, p), n in r.versions.items()},
            "degraded": r.degraded,
            "answered_rate": r.treated.rate(r.treated.answered),
            "buyer_rate": r.treated.rate(r.treated.buyers),
            "holdout_buyer_rate": r.holdout.rate(r.holdout.buyers),
            "seconds": round(r.seconds, 1),
        } for r in summary.rounds],
        "model": {"version": t.version, "promoted": t.promoted, "refusal": t.refusal,
                  "served": summary.model_served, "rows": t.rows, "positives": t.positives,
                  "estimates": t.estimates, "cold_start": t.cold_start,
                  "beats_cold_start": t.beats_cold_start},
        "problems": summary.problems[:20],
        "seconds": round(summary.seconds, 1),
    }


def _handler(args: argparse.Namespace) -> int:
    console = Console()
    try:
        return asyncio.run(_run(args, console))
    except DemoError as exc:
        console.print(f"[bold red]demo stopped:[/] {exc}")
        return 1
    except (ValueError, OSError) as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        return 1


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="simulate customers through the running services, then train and compare",
        description="Simulates customers' multi-channel journeys, streams them through the "
        "ingestion API and signed marketing webhooks, answers the recommender's actions with a "
        "hidden response model, trains and promotes a model, and shows what it learned. Start "
        "the services first (`make run` in another terminal).")
    demo.add_argument("--customers", type=int, default=10_000, help="customers to simulate")
    demo.add_argument("--rounds", type=int, default=2,
                      help="decision rounds before training (each asks for every customer)")
    demo.add_argument("--evaluation-share", type=float, default=0.3,
                      help="share of customers kept back for the promoted model's round "
                      "(in tenths)")
    demo.add_argument("--webhook-days", type=float, default=30.0,
                      help="e-mail and shop events of the last DAYS arrive as signed provider "
                      "deliveries; older ones were imported through the API")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    demo.add_argument("--ingestion-url", help="default: http://HOST:INGESTION_PORT")
    demo.add_argument("--profile-url", help="default: http://HOST:PROFILE_PORT")
    demo.add_argument("--recommender-url", help="default: http://HOST:RECOMMENDER_PORT")
    demo.add_argument("--api-key", help="default: the development key in DATA_DIR/dev-api-key")
    demo.add_argument("--stack-file", help="broker address and webhook signing secrets "
                      "(default: DATA_DIR/dev-stack.json, written by `touchpoint run`)")
    demo.add_argument("--kafka-bootstrap-servers",
                      help="Kafka the training reads (default: the stack file, else the setting)")
    demo.add_argument("--registry", help="model registry directory the recommender follows "
                      "(default: the MODEL_REGISTRY_DIR setting)")
    demo.add_argument("--json", help="also write the summary to this JSON file")
    demo.set_defaults(handler=_handler)
