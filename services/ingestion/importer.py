"""Streams a history file (JSON lines or CSV) through event validation onto Kafka."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from services.streaming.publisher import Publisher
from shared.errors import InvalidEventError
from shared.events import ValidationRules, validate_event
from shared.stream import event_record
from shared.touchpoints import TouchpointCatalog

NESTED_COLUMNS = ("context.", "properties.", "consent.")


@dataclass
class ImportSummary:
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    rejects_file: Path | None = None
    reasons: dict[str, int] = field(default_factory=dict)


def csv_row_to_event(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as an event object: empty cells are absent, `a.b` columns nest."""
    event: dict[str, Any] = {}
    for column, cell in row.items():
        if column is None or cell is None or cell == "":
            continue
        if column.startswith(NESTED_COLUMNS):
            parent, _, child = column.partition(".")
            event.setdefault(parent, {})[child] = cell
        else:
            event[column] = cell
    return event


def with_stable_id(row: Any) -> Any:
    """Rows without an event_id get one derived from their content, so re-imports dedupe."""
    if isinstance(row, dict) and not row.get("event_id"):
        digest = hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return {**row, "event_id": f"import-{digest[:32]}"}
    return row


def read_rows(stream: TextIO, fmt: str) -> Iterator[tuple[int, Any, str]]:
    """Yields (line number, parsed row or parse error, original text)."""
    if fmt == "csv":
        reader = csv.DictReader(stream)
        for row in reader:
            yield reader.line_num, csv_row_to_event(row), ""
        return
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line), line
        except orjson.JSONDecodeError as exc:
            yield number, exc, line


def detect_format(path: Path) -> str:
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def import_file(
    path: Path,
    publisher: Publisher,
    topic: str,
    catalog: TouchpointCatalog,
    rejects_path: Path,
    fmt: str | None = None,
    chunk_size: int = 2000,
    max_future_skew_s: int = 300,
    on_progress: Callable[[int], None] = lambda _bytes: None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportSummary:
    """Validates every row, publishes valid events in acknowledged chunks, writes rejects."""
    fmt = fmt or detect_format(path)
    summary = ImportSummary()
    pending = []
    rejects: io.TextIOWrapper | None = None
    with path.open("r", encoding="utf-8", errors="strict", newline="") as stream:
        last_position = 0
        try:
            for line_number, row, original in read_rows(stream, fmt):
                summary.read += 1
                problems = None
                if isinstance(row, Exception):
                    problems = [{"field": "(line)", "message": f"not valid JSON: {row}",
                                 "type": "json_invalid"}]
                else:
                    rules = ValidationRules(catalog, clock(), max_future_skew_s)
                    try:
                        event = validate_event(with_stable_id(row), rules, "import")
                        pending.append(event_record(event))
                    except InvalidEventError as exc:
                        problems = exc.errors
                if problems:
                    summary.rejected += 1
                    for problem in problems:
                        summary.reasons[problem["field"]] = summary.reasons.get(
                            problem["field"], 0) + 1
                    if rejects is None:
                        rejects = rejects_path.open("w", encoding="utf-8")
                    rejects.write(orjson.dumps({
                        "line": line_number,
                        "row": original.rstrip("\n") if original else row,
                        "errors": problems,
                    }, default=str).decode() + "\n")
                if len(pending) >= chunk_size:
                    publisher.publish(topic, pending)
                    summary.accepted += len(pending)
                    pending = []
                position = stream.buffer.tell() if hasattr(stream, "buffer") else 0
                if position != last_position:
                    on_progress(position - last_position)
                    last_position = position
            publisher.publish(topic, pending)
            summary.accepted += len(pending)
        finally:
            if rejects is not None:
                rejects.close()
                summary.rejects_file = rejects_path
    return summary
