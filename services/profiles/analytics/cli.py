"""`touchpoint report --from --to --format md|csv [--out FILE]`."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "report", help="touchpoint analytics report (Markdown or CSV)",
        description="Touchpoint effectiveness, attribution by every model, the funnel, where "
        "customers drop out and recommendation lift, read from the analytics aggregates in "
        "Redis (REDIS_URL, REDIS_NAMESPACE). The same numbers as /v1/analytics/*.",
    )
    command.add_argument("--from", dest="date_from", type=date.fromisoformat, required=True,
                         metavar="YYYY-MM-DD", help="first day (UTC), inclusive")
    command.add_argument("--to", dest="date_to", type=date.fromisoformat, required=True,
                         metavar="YYYY-MM-DD", help="last day (UTC), inclusive")
    command.add_argument("--format", choices=("md", "csv"), default="md")
    command.add_argument("--out", type=Path, help="write to this file instead of printing")
    command.add_argument("--phase", choices=("pre_purchase", "purchase", "post_purchase"))
    command.add_argument("--channel", help="only this channel")
    command.add_argument("--segment", choices=("prospect", "first_time_buyer", "repeat_buyer"))
    command.add_argument("--key", choices=("channel", "touchpoint"), default="channel",
                         help="what attribution credits (default: channel)")
    command.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    import redis
    from rich.console import Console

    from services.profiles.analytics.api import build_reader, today_utc
    from services.profiles.analytics.reader import MAX_RANGE_DAYS
    from services.profiles.analytics.report import Report, to_csv, to_markdown
    from services.profiles.analytics.schemas import Filters
    from shared.errors import StoreUnavailableError
    from shared.settings import load_settings

    console = Console(stderr=True)
    if args.date_from > args.date_to:
        console.print(f"[red]--from {args.date_from} is after --to {args.date_to}[/red]")
        return 2
    if (args.date_to - args.date_from).days + 1 > MAX_RANGE_DAYS:
        console.print(f"[red]the range may span at most {MAX_RANGE_DAYS} days[/red]")
        return 2
    settings = load_settings()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        reader = build_reader(settings, client)
        if args.channel and args.channel not in reader.catalog.channels:
            console.print(f"[red]unknown channel {args.channel!r}[/red]")
            return 2
        filters = Filters(date_from=args.date_from, date_to=args.date_to, phase=args.phase,
                          channel=args.channel, segment=args.segment)
        with console.status("reading the analytics aggregates..."):
            report = Report(
                effectiveness=reader.effectiveness(filters),
                attribution=reader.attribution(filters, args.key),
                journeys=reader.journeys(filters, today_utc()),
                recommendations=reader.recommendations(filters),
            )
    except StoreUnavailableError as exc:
        console.print(f"[red]Redis is unavailable: {exc}[/red]")
        return 1
    finally:
        client.close()
    text = to_csv(report) if args.format == "csv" else to_markdown(report)
    if args.out:
        args.out.write_text(text, "utf-8")
        console.print(f"report written to {args.out}")
    else:
        print(text, end="")
    return 0
