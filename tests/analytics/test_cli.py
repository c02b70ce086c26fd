"""`touchpoint report` reads the same aggregates the API answers from."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from services.cli import main
from services.profiles.analytics.api import build_reader
from services.profiles.analytics.demo_data import demo_data
from services.profiles.analytics.schemas import Filters

END = datetime(2027, 3, 31, 12, 0, tzinfo=UTC)
FROM, TO = "2026-12-15", "2027-03-31"


@pytest.fixture
def loaded(settings, redis_client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("REDIS_NAMESPACE", settings.redis_namespace)
    reader = build_reader(settings, redis_client)
    data = demo_data(1500, int(END.timestamp() * 1000), days=90, seed=5)
    reader.store.record(data.events, data.decisions, now_s=1)
    reader.store.close_quiet_journeys()
    return reader, Filters(date_from=END.date() - timedelta(days=106), date_to=END.date())


def test_csv_report_holds_the_api_numbers(loaded, tmp_path, capsys):
    reader, filters = loaded
    out = tmp_path / "report.csv"
    assert main(["report", "--from", FROM, "--to", TO, "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    value = {(r["section"], r["item"], r["metric"]): r["value"] for r in rows}
    table = reader.effectiveness(filters)
    assert value[("totals", "all", "events")] == str(table.totals.events)
    for row in table.rows[:5]:
        assert value[("touchpoints", row.touchpoint, "events")] == str(row.events)
    models = {m.model for m in reader.attribution(filters).models}
    assert {s.split(":")[1] for s, _, _ in value if s.startswith("attribution:")} == models
    assert any(s == "recommendations" for s, _, _ in value)


def test_markdown_report_prints_every_section(loaded, capsys):
    reader, filters = loaded
    assert main(["report", "--from", FROM, "--to", TO, "--segment", "prospect"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# Touchpoint report {FROM} to {TO} (segment prospect)")
    for heading in ("## Touchpoint effectiveness", "## Attribution of conversions by channel",
                    "## Funnel", "## Last touchpoint before dropping out",
                    "## Recommendation results"):
        assert heading in text
    prospects = reader.effectiveness(filters.model_copy(update={"segment": "prospect"}))
    assert f"{prospects.totals.events:,} events" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2027-03-01", "--to", "2027-01-01"], "is after --to"),
        (["--from", "2020-01-01", "--to", "2027-01-01"], "at most 366 days"),
        (["--from", FROM, "--to", TO, "--channel", "pigeon"], "unknown channel"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(loaded, capsys, args, message):
    assert main(["report", *args]) == 2
    assert message in capsys.readouterr().err
