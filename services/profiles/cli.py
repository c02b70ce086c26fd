"""Profile commands: `touchpoint replay`, `touchpoint profiles show|consume`.

Each handler reads the settings, builds its clients, runs, and closes them: only wiring here.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import UTC, datetime

import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from shared import redis_keys as keys
from shared.settings import load_settings
from shared.touchpoints import load_catalog


def register(subparsers: argparse._SubParsersAction) -> None:
    replay = subparsers.add_parser(
        "replay", help="rebuild every profile from the beginning of the topics",
        description="Reads the event and decision topics from the beginning into a fresh "
                    "Redis namespace, then switches the profile service over to it.")
    replay.add_argument("--drop-old", action="store_true",
                        help="delete the previous namespace's profile keys after switching")
    replay.set_defaults(handler=_replay)

    profiles = subparsers.add_parser("profiles", help="customer profiles")
    commands = profiles.add_subparsers(dest="profiles_command", metavar="COMMAND",
                                       required=True)
    show = commands.add_parser("show", help="print one customer's profile")
    show.add_argument("customer_id")
    show.add_argument("--json", action="store_true", help="the full profile as JSON")
    show.set_defaults(handler=_show)
    consume = commands.add_parser("consume", help="run the profile consumer (no HTTP API)")
    consume.set_defaults(handler=_consume)


def _client(settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=10)


def _show(args: argparse.Namespace) -> int:
    from services.profiles.app import build_store
    from services.profiles.view import build_profile

    settings = load_settings()
    console = Console()
    client = _client(settings)
    try:
        store = build_store(settings, client)
        store.refresh_generation()
        subject = keys.customer_subject(args.customer_id)
        stored = store.read(subject)
        if stored is None:
            console.print(f"[red]no profile for customer {args.customer_id!r}[/red]")
            return 1
        profile = build_profile(subject, stored, load_catalog(settings.touchpoint_catalog_file),
                                datetime.now(UTC))
    finally:
        client.close()
    if args.json:
        console.print_json(json.dumps(profile))
        return 0
    journey, value, sat = profile["journey"], profile["value"], profile["satisfaction"]
    table = Table(title=f"customer {args.customer_id}", show_header=False)
    rows = [
        ("seen", f"{profile['first_seen']} .. {profile['last_seen']}"),
        ("anonymous ids", ", ".join(profile["anonymous_ids"]) or "-"),
        ("journey", f"{journey['phase']} / {journey['step']} since {journey['since']}"
                    + (" (loyal)" if journey["loyal"] else "")),
        ("events", str(profile["activity"]["events"])),
        ("orders", f"{value['orders']}, revenue {value['revenue'] or '-'}"),
        ("rating", str(sat["average_rating"] or "-")),
        ("open bad experiences", ", ".join(b["touchpoint"] for b in sat["open_bad_experiences"])
         or "-"),
        ("consent", ", ".join(f"{c}: {v['status']}" for c, v in profile["consent"].items())
         or "-"),
        ("contacts", str(len(profile["outreach"]["contacts"]))),
    ]
    for name, text in rows:
        table.add_row(name, text)
    console.print(table)
    return 0


def _consume(args: argparse.Namespace) -> int:
    from services.profiles.consumer_processes import run_profile_consumer
    from services.web.serve import configure_service_logging

    settings = load_settings()
    configure_service_logging(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return run_profile_consumer(settings, stop)


def _replay(args: argparse.Namespace) -> int:
    from services.profiles.replay import drop_namespace, replay

    settings = load_settings()
    console = Console()
    client = _client(settings)
    try:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("replaying records", total=None)
            report = replay(settings, client, load_catalog(settings.touchpoint_catalog_file),
                            progress=lambda done, total: bar.update(task, completed=done,
                                                                    total=total))
        console.print(
            f"[green]switched[/green] to [bold]{report.namespace}[/bold] (was "
            f"{report.previous_namespace}): {report.records} records, {report.applied} applied, "
            f"{report.duplicates} duplicates, {report.dead_letters} undecodable, "
            f"{report.seconds} s")
        if args.drop_old and report.previous_namespace != report.namespace:
            removed = drop_namespace(client, report.previous_namespace, settings.redis_namespace)
            console.print(f"deleted {removed} keys of {report.previous_namespace}")
    finally:
        client.close()
    return 0
