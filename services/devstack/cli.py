"""`touchpoint run`: the whole system on one machine."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="start Redis, a broker and the three services on this machine",
        description="Starts an embedded Redis (data in ./.data/redis) and, unless "
        "KAFKA_BOOTSTRAP_SERVERS is set, an in-memory Kafka-protocol broker, then the ingestion "
        "(8001), profile (8002) and recommender (8003) services. Ctrl-C stops everything.",
    )
    run.set_defaults(handler=_run)
    register_config(subparsers)


def _run(args: argparse.Namespace) -> int:
    from services.devstack.runner import run_stack

    return run_stack()


def register_config(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser(
        "config", help="print every setting with its current value, or refresh the docs' table")
    config.add_argument("--write", action="store_true",
                        help="rewrite the settings table in README.md and docs/configuration.md")
    config.set_defaults(handler=_config)


def _config(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from shared.settings import load_settings
    from shared.settings_doc import replace_table

    if args.write:
        for name in ("README.md", "docs/configuration.md"):
            path = Path(name)
            path.write_text(replace_table(path.read_text(encoding="utf-8")), encoding="utf-8")
            print(f"updated {path}")
        return 0
    settings = load_settings()
    table = Table(title="Touchpoint settings (environment variable = name)")
    table.add_column("variable")
    table.add_column("value")
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        shown = "***" if ("password" in name or "secret" in name) and value else str(value)
        table.add_row(name.upper(), shown)
    Console().print(table)
    return 0
