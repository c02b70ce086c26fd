"""`touchpoint import FILE`."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "import", help="load a history file (JSON lines or CSV) onto the event stream",
        description="Validates each row exactly like POST /v1/events and streams valid events "
        "to Kafka. Rejected rows go to a file with their reasons. CSV needs a header; columns "
        "named like context.campaign or properties.sku nest.",
    )
    command.add_argument("file", type=Path, help="a .jsonl/.json file or a .csv file")
    command.add_argument("--format", choices=("jsonl", "csv"), help="default: from the suffix")
    command.add_argument("--rejects", type=Path,
                         help="where rejected rows go (default: FILE.rejected.jsonl)")
    command.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
    from rich.table import Table

    from services.ingestion.importer import import_file
    from services.streaming.publisher import build_publisher
    from shared.errors import BrokerUnavailableError
    from shared.logging import configure_logging
    from shared.settings import load_settings
    from shared.touchpoints import load_catalog

    console = Console(stderr=True)
    path: Path = args.file
    if not path.is_file():
        console.print(f"[red]no such file: {path}[/red]")
        return 2
    settings = load_settings()
    configure_logging("WARNING", settings.log_format)
    publisher = build_publisher(settings)
    rejects = args.rejects or path.with_name(path.name + ".rejected.jsonl")
    try:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task(f"importing {path.name}", total=path.stat().st_size)
            summary = import_file(
                path, publisher, settings.topic_touchpoints,
                load_catalog(settings.touchpoint_catalog_file), rejects, fmt=args.format,
                max_future_skew_s=settings.max_future_skew_s,
                on_progress=lambda n: progress.advance(task, n),
            )
    except BrokerUnavailableError as exc:
        console.print(f"[red]Kafka is unavailable: {exc}. Nothing after the last acknowledged "
                      "chunk was confirmed; rerunning the import is safe (event ids dedupe).[/red]")
        return 1
    except UnicodeDecodeError as exc:
        console.print(f"[red]{path} is not UTF-8 text: {exc}[/red]")
        return 2
    finally:
        publisher.close()
    table = Table(title=f"Import of {path.name}")
    table.add_column("rows read", justify="right")
    table.add_column("accepted", justify="right", style="green")
    table.add_column("rejected", justify="right", style="red")
    table.add_row(str(summary.read), str(summary.accepted), str(summary.rejected))
    console.print(table)
    if summary.rejected:
        top = sorted(summary.reasons.items(), key=lambda item: -item[1])[:5]
        console.print("most common problems: " + ", ".join(f"{f} ({n})" for f, n in top))
        console.print(f"rejected rows with reasons: {summary.rejects_file}")
    return 0
