"""`touchpoint import`: a history file through the same validation onto the real broker."""

from __future__ import annotations

import orjson

from services.cli import main
from tests.kafka_reading import read_topic

JSONL = "\n".join([
    '{"event_id": "h-1", "customer_id": "c-1", "occurred_at": "2025-03-01T10:00:00+07:00", '
    '"touchpoint": "web.visit"}',
    '{"customer_id": "c-1", "occurred_at": "2025-03-02T10:00:00+07:00", '
    '"touchpoint": "store.purchase", "value": 350000, "currency": "VND"}',
    '{"customer_id": "c-2", "occurred_at": "2025-03-02T10:00:00+07:00", "touchpoint": "nope"}',
    "{not json",
    "",
])
CSV = (
    "customer_id,occurred_at,touchpoint,rating,context.campaign,properties.sku\n"
    "c-3,2025-03-05T09:00:00+07:00,survey.response,4,spring,\n"
    "c-4,2025-03-05T09:00:00+07:00,web.product_view,,spring,AO-1\n"
    "c-5,2025-03-05T09:00:00+07:00,survey.response,eleven,,\n"
)


def configure(monkeypatch, settings):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    monkeypatch.setenv("TOPIC_TOUCHPOINTS", settings.topic_touchpoints)


def test_jsonl_import_accepts_valid_rows_and_writes_rejects(tmp_path, monkeypatch, settings):
    configure(monkeypatch, settings)
    source = tmp_path / "history.jsonl"
    source.write_text(JSONL)
    assert main(["import", str(source)]) == 0
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, 2)
    events = sorted((orjson.loads(r.value) for r in records), key=lambda e: e["occurred_at"])
    assert [e["touchpoint"] for e in events] == ["web.visit", "store.purchase"]
    assert all(e["source"] == "import" for e in events)
    assert events[1]["event_id"].startswith("import-")
    rejects = [orjson.loads(line) for line in
               (tmp_path / "history.jsonl.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [3, 4]
    assert rejects[0]["errors"][0]["field"] == "touchpoint"
    assert rejects[1]["errors"][0]["field"] == "(line)"


def test_reimport_produces_the_same_event_ids(tmp_path, monkeypatch, settings):
    configure(monkeypatch, settings)
    source = tmp_path / "history.jsonl"
    source.write_text(JSONL)
    assert main(["import", str(source)]) == 0
    assert main(["import", str(source)]) == 0
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, 4)
    ids = [orjson.loads(r.value)["event_id"] for r in records]
    assert len(ids) == 4 and len(set(ids)) == 2


def test_csv_import_nests_dotted_columns(tmp_path, monkeypatch, settings):
    configure(monkeypatch, settings)
    source = tmp_path / "surveys.csv"
    source.write_text(CSV)
    assert main(["import", str(source)]) == 0
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, 2)
    events = {orjson.loads(r.value)["customer_id"]: orjson.loads(r.value) for r in records}
    assert events["c-3"]["rating"] == 4 and events["c-3"]["context"] == {"campaign": "spring"}
    assert events["c-4"]["properties"] == {"sku": "AO-1"}
    [reject] = [orjson.loads(x) for x in (tmp_path / "surveys.csv.rejected.jsonl").read_text()
                .splitlines()]
    assert reject["errors"][0]["field"] == "rating"


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["import", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
