"""`touchpoint dlq list|replay`: the dead-letter topic from the command line.

Exit status: 0 when done (and, for replay, nothing still fails), 1 when some dead letters
still fail validation, 2 when Kafka cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

EXIT_OK, EXIT_STILL_FAILING, EXIT_UNAVAILABLE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    dlq = subparsers.add_parser(
        "dlq", help="inspect and replay the dead-letter topic",
        description="Dead letters are records that could not be processed, kept with their "
        "original bytes and the reason (topic TOPIC_DEAD_LETTER, default touchpoints.dlq.v1). "
        "Reading them commits nothing: they stay until the topic's retention removes them.",
    )
    commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="{list,replay}")

    listing = commands.add_parser(
        "list", help="show the newest dead letters with reason, source and time",
        description="Shows the newest dead letters: where they came from, when, why, and "
        "which fields failed.",
    )
    listing.add_argument("--limit", type=_non_negative, default=50, metavar="N",
                         help="show the newest N (default 50; 0 shows all)")
    listing.add_argument("--json", action="store_true",
                         help="print JSON (one object with the records) instead of a table")
    listing.set_defaults(handler=_list)

    replay = commands.add_parser(
        "replay", help="re-validate dead letters and republish the valid ones",
        description="Validates each dead letter's original event again, with the current "
        "touchpoint catalog, and publishes the valid ones to the touchpoint topic "
        "(TOPIC_TOUCHPOINTS). Events keep their event_id, so replaying twice counts once. "
        "Those that still fail are listed with their field errors.",
    )
    replay.add_argument("--dry-run", action="store_true",
                        help="validate and report only; publish nothing")
    replay.add_argument("--json", action="store_true", help="print the report as JSON")
    replay.set_defaults(handler=_replay)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


@contextmanager
def _progress(label: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A progress bar on stderr; yields (set total, advance)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        row = bar.add_task(label, total=None)
        yield (lambda total: bar.update(row, total=total),
               lambda done: bar.advance(row, done))


def _fields(errors: list[dict[str, Any]]) -> str:
    parts = [f"{e.get('field', '?')}: {e.get('message', '')}" for e in errors[:3]]
    if len(errors) > 3:
        parts.append(f"... {len(errors) - 3} more")
    return "\n".join(parts)


def _event_hint(original: bytes | None) -> str:
    if original is None:
        return ""
    try:
        raw = json.loads(original)
    except ValueError:
        return f"({len(original)} bytes, not JSON)"
    if not isinstance(raw, dict):
        return "(not a JSON object)"
    who = raw.get("customer_id") or raw.get("anonymous_id") or "?"
    return f"{raw.get('touchpoint', '?')}\n{who}"


def _quiet_kafka_client() -> None:
    # kafka-python logs every reconnect attempt; failures reach the user as one message.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _list(args: argparse.Namespace) -> int:
    from services.ops.dead_letters import list_dead_letters
    from shared.errors import BrokerUnavailableError
    from shared.settings import load_settings

    settings = load_settings()
    _quiet_kafka_client()
    console = Console()
    try:
        with _progress(f"Reading {settings.topic_dead_letter}") as (start, advance):
            listing = list_dead_letters(settings, args.limit or None, start, advance)
    except BrokerUnavailableError as exc:
        Console(stderr=True).print(f"[red]Kafka unavailable:[/] {exc}")
        return EXIT_UNAVAILABLE
    if args.json:
        print(json.dumps({"topic": settings.topic_dead_letter, "total": listing.total,
                          "records": [letter.summary() for letter in listing.letters]},
                         indent=2))
        return EXIT_OK
    if not listing.letters:
        console.print(f"No dead letters on [bold]{settings.topic_dead_letter}[/].")
        return EXIT_OK
    table = Table(title=f"{settings.topic_dead_letter}: newest {len(listing.letters)} of "
                        f"{listing.total}", show_lines=True)
    for column in ("partition:offset", "dead-lettered at", "source", "reason", "fields",
                   "event"):
        table.add_column(column, overflow="fold")
    for letter in reversed(listing.letters):
        table.add_row(letter.position, letter.when.strftime("%Y-%m-%d %H:%M:%S %Z"), letter.source,
                      letter.reason, _fields(letter.errors), _event_hint(letter.original))
    console.print(table)
    console.print("Replay them with [bold]touchpoint dlq replay --dry-run[/] first, then "
                  "[bold]touchpoint dlq replay[/].")
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from services.ops.dead_letters import replay_dead_letters, replay_rules
    from shared.errors import BrokerUnavailableError
    from shared.settings import load_settings

    settings = load_settings()
    _quiet_kafka_client()
    rules = replay_rules(settings, datetime.now(UTC))
    label = "Validating" if args.dry_run else "Replaying"
    try:
        with _progress(f"{label} {settings.topic_dead_letter}") as (start, advance):
            report = replay_dead_letters(settings, rules, dry_run=args.dry_run,
                                         on_start=start, on_progress=advance)
    except BrokerUnavailableError as exc:
        Console(stderr=True).print(f"[red]Kafka unavailable:[/] {exc}")
        return EXIT_UNAVAILABLE
    status = EXIT_STILL_FAILING if report.failing else EXIT_OK
    if args.json:
        print(json.dumps({
            "dry_run": report.dry_run, "read": report.read,
            "replayed": [{"partition": letter.partition, "offset": letter.offset,
                          "event_id": event_id} for letter, event_id in report.replayed],
            "still_failing": [{**letter.summary(), "errors": errors}
                              for letter, errors in report.failing],
            "topic": settings.topic_touchpoints,
        }, indent=2))
        return status
    console = Console()
    verb = "would be republished" if report.dry_run else "republished"
    summary = Table(show_header=False, box=None)
    summary.add_row("dead letters read", str(report.read))
    summary.add_row(f"{verb} to {settings.topic_touchpoints}", str(len(report.replayed)))
    summary.add_row("still failing", str(len(report.failing)))
    console.print(summary)
    if report.failing:
        table = Table(title="Still failing (fix the sender or the catalog, then replay again)",
                      show_lines=True)
        for column in ("partition:offset", "source", "original reason", "fields now"):
            table.add_column(column, overflow="fold")
        for letter, errors in report.failing:
            table.add_row(letter.position, letter.source, letter.reason, _fields(errors))
        console.print(table)
    return status
