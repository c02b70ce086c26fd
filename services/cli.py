"""The `touchpoint` command. Each part of the system adds its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules exposing `register(subparsers)`; a module that is not installed is skipped.
COMMAND_MODULES = (
    "services.devstack.cli",
    "services.ingestion.cli",
    "services.profiles.cli",
    "services.profiles.analytics.cli",
    "services.recommender.cli",
    "services.outbound.cli",
    "services.web.keys_cli",
    "services.ops.cli",
    "services.reliability.cli",
    "services.bench.cli",
    "services.demo.cli",
    "services.simulator.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="touchpoint",
        description="Touchpoint: customer touchpoints in, next-best actions out.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
