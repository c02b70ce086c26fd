"""`touchpoint bench`: measure the system on this machine against its building blocks."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="benchmark the system on this machine (make bench)",
        description="Starts an embedded Redis and Kafka-protocol broker (or uses REDIS_URL / "
        "KAFKA_BOOTSTRAP_SERVERS), the services as processes, loads simulated customer "
        "histories, measures the ceilings of the building blocks and every scenario with an "
        "open-loop load generator, prints a table, writes bench/results/<date>.json and "
        "updates docs/benchmarks.md.",
    )
    bench.add_argument("--quick", action="store_true",
                       help="a smoke run: short scenarios, 2,000 customers, results not written")
    bench.add_argument("--customers", type=int, default=None,
                       help="simulated customers to load (default 100,000)")
    bench.add_argument("--duration", type=float, default=None,
                       help="seconds per fixed-rate scenario (default 15)")
    bench.add_argument("--dashboard-events", type=int, default=None,
                       help="events behind the dashboard API scenario (default 1,000,000)")
    bench.add_argument("--soak", action="store_true",
                       help="instead of the suite: twice the target rates for 5 minutes, "
                       "memory over time and error counts")
    bench.add_argument("--soak-minutes", type=float, default=5.0, help=argparse.SUPPRESS)
    bench.add_argument("--scaling", action="store_true",
                       help="instead of the suite: profile consumer throughput with 1, 2, 4 and "
                       "6 consumer processes on the 3-broker test cluster")
    bench.add_argument("--no-write", action="store_true",
                       help="print only; do not write results or docs")
    bench.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    from services.bench.scenarios import Plan

    root = Path.cwd()
    plan = Plan.quick() if args.quick else Plan()
    if args.customers is not None:
        plan.customers = args.customers
    if args.duration is not None:
        plan.duration_s = args.duration
    if args.dashboard_events is not None:
        plan.dashboard_events = args.dashboard_events
    if args.scaling:
        from services.bench.scaling import run_scaling

        run_scaling(root, customers=args.customers or 10_000, write=not args.no_write)
        return 0
    if args.soak:
        from services.bench.soak import run_soak

        run_soak(root, minutes=args.soak_minutes, customers=args.customers or 20_000,
                 write=not args.no_write)
        return 0
    from services.bench.suite import run_suite

    mode = "quick" if args.quick else "full"
    run_suite(plan, mode, root, write_docs=not (args.quick or args.no_write))
    return 0
