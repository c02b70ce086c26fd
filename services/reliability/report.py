"""The results table of `docs/reliability.md`, rendered from the last fault-injection run.

The fault suite (`tests/faults`) writes `reliability/fault-results.json` under pytest's
temporary directory. `touchpoint reliability-report` (or `python -m
services.reliability.report`) finds the newest one and prints the table, or with `--write`
replaces the table between the markers in the document.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

BEGIN = "<!-- fault-results:begin -->"
END = "<!-- fault-results:end -->"
RESULTS_NAME = "fault-results.json"
DEFAULT_DOCUMENT = Path("docs/reliability.md")


def newest_results(root: Path | None = None) -> Path | None:
    """The newest results file of any pytest run under the temporary directory."""
    root = root or Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
    candidates = list(root.glob(f"pytest-*/reliability/{RESULTS_NAME}"))
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_table(run: dict[str, Any]) -> str:
    lines = [
        f"Last run: {run.get('finished_at', '?')} ({len(run['scenarios'])} scenarios, "
        f"{run.get('duration_s', 0):.0f} s).",
        "",
        "| scenario | injected | events sent | acknowledged (202) | in profiles | duplicates "
        "| missing | 503 + Retry-After | landed without ack | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in run["scenarios"]:
        errors = "; ".join(s["errors"]) if s["errors"] else "none"
        lines.append("| " + " | ".join(_cell(v) for v in (
            s["scenario"], s["injected"], s["events_sent"], s["acknowledged"], s["in_profiles"],
            s["duplicates"], s["missing"], s["refused_503"], s["landed_without_ack"], errors,
        )) + " |")
    notes = [(s["scenario"], s["extra"]) for s in run["scenarios"] if s.get("extra")]
    if notes:
        lines += ["", "Observed during the run:", ""]
        for name, extra in notes:
            details = ", ".join(f"{k}: {v}" for k, v in extra.items())
            lines.append(f"- `{name}`: {_cell(details)}")
    return "\n".join(lines)


def replace_table(document: str, table: str) -> str:
    head, found, rest = document.partition(BEGIN)
    if not found:
        raise ValueError(f"the document has no {BEGIN} marker")
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="touchpoint reliability-report",
                                     description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, help=f"a {RESULTS_NAME} (default: newest)")
    parser.add_argument("--write", nargs="?", const=DEFAULT_DOCUMENT, type=Path, metavar="DOC",
                        help=f"replace the table in DOC (default {DEFAULT_DOCUMENT})")


def run(args: argparse.Namespace) -> int:
    path = args.results or newest_results()
    if path is None or not path.exists():
        print("no fault-injection results found: run `pytest tests/faults` first",
              file=sys.stderr)
        return 1
    table = render_table(json.loads(path.read_text("utf-8")))
    if args.write:
        document = args.write.read_text("utf-8")
        args.write.write_text(replace_table(document, table), "utf-8")
        print(f"{args.write}: table updated from {path}")
    else:
        print(table)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("reliability-report",
                                   help="render the fault-injection results table")
    add_arguments(parser)
    parser.set_defaults(handler=run)


if __name__ == "__main__":
    sys.exit(main())
