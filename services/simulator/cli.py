"""`touchpoint simulate`: write simulated customer journeys as JSON lines.

The output is valid input for `touchpoint import` and for `POST /v1/events`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson


def register(subparsers: argparse._SubParsersAction) -> None:
    simulate = subparsers.add_parser(
        "simulate", help="write simulated multi-channel customer journeys (JSON lines)",
        description="Generates realistic customer histories (ads, search, social, reviews, "
        "store and online purchases, deliveries, warranty calls, surveys, complaints, consent "
        "changes, anonymous visitors identified later), deterministic by seed.",
    )
    add_arguments(simulate)
    simulate.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=1000, help="how many customers")
    parser.add_argument("--days", type=float, default=90, help="history length up to now")
    parser.add_argument("--seed", type=int, default=7, help="same seed, same journeys")
    parser.add_argument("--prefix", default="c", help="customer id prefix (c -> c-0000001)")
    parser.add_argument("--order", choices=("customer", "time"), default="customer",
                        help="customer after customer, or all events in time order")
    parser.add_argument("--out", type=Path, default=None, help="file to write (default stdout)")


def run(args: argparse.Namespace) -> int:
    from services.simulator import JourneySimulator

    end = datetime.now(UTC)
    simulator = JourneySimulator(seed=args.seed, start=end - timedelta(days=args.days), end=end,
                                 customer_prefix=args.prefix)
    events = (simulator.stream(args.customers) if args.order == "time"
              else simulator.events(args.customers))
    out = args.out.open("wb") if args.out else sys.stdout.buffer
    count = 0
    try:
        for event in events:
            out.write(orjson.dumps(event) + b"\n")
            count += 1
    finally:
        if args.out:
            out.close()
    print(f"{count:,} events of {args.customers:,} customers", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.simulator")
    add_arguments(parser)
    return run(parser.parse_args())
