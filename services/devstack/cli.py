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


def _run(args: argparse.Namespace) -> int:
    from services.devstack.runner import run_stack

    return run_stack()
