"""`touchpoint simulate`: JSON lines that the importer and the API accept."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import orjson

from services.simulator import cli
from shared.events import ValidationRules, validate_event
from shared.touchpoints import load_catalog


def test_writes_valid_events_as_json_lines(tmp_path):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = tmp_path / "events.jsonl"
    assert cli.run(parser.parse_args(["--customers", "30", "--order", "time", "--out",
                                      str(out)])) == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) > 100
    rules = ValidationRules(load_catalog(), datetime.now(UTC))
    events = [orjson.loads(line) for line in lines]
    for event in events:
        validate_event(event, rules)
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
