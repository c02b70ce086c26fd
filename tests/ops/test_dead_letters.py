"""Dead letters: decoding and the replay plan (pure), then list and replay on a real broker."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.ops import cli
from services.ops.dead_letters import (
    DeadLetter,
    list_dead_letters,
    parse_dead_letter,
    plan_replay,
    replay_dead_letters,
    replay_event_id,
    replay_rules,
)
from services.streaming.publisher import KafkaPublisher
from shared.settings import Settings
from shared.stream import EVENT_TYPE, dead_letter_record, decode_event, header
from shared.touchpoints import load_catalog
from tests.kafka_reading import read_topic

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RULES = replay_rules(Settings(), NOW)


def event_bytes(**fields: object) -> bytes:
    base = {"event_id": "evt-1", "customer_id": "c-1", "touchpoint": "social.ad_click",
            "occurred_at": "2026-11-20T09:30:00+07:00"}
    return orjson.dumps({k: v for k, v in {**base, **fields}.items() if v is not None})


def letter_for(original: bytes, source: str = "profiles", offset: int = 0) -> DeadLetter:
    record = dead_letter_record(original, "could not fold", source, NOW,
                                [{"field": "touchpoint", "message": "unknown", "type": "x"}],
                                key=b"c-1", request_id="req-9")
    return parse_dead_letter(0, offset, 1, record.key, record.value, record.headers)


# --- pure -------------------------------------------------------------------------------


def test_parse_keeps_reason_source_time_errors_and_original() -> None:
    original = b'{"not": "an event"}'
    letter = letter_for(original, source="webhook:hubspot")
    assert (letter.reason, letter.source, letter.dead_lettered_at) == (
        "could not fold", "webhook:hubspot", NOW.isoformat())
    assert letter.original == original
    assert letter.errors[0]["field"] == "touchpoint"
    assert (letter.key, letter.request_id, letter.position) == (b"c-1", "req-9", "0:0")


def test_binary_originals_survive_the_round_trip() -> None:
    original = bytes(range(256))
    assert letter_for(original).original == original


@pytest.mark.parametrize("value", [b"", b"not json", b"[1, 2]", b'{"reason": "x"}',
                                   b'{"original_base64": "***"}'])
def test_a_record_not_in_dead_letter_layout_is_described_not_dropped(value: bytes) -> None:
    letter = parse_dead_letter(3, 7, 1, None, value, [("dlq_reason", b"oops")])
    assert letter.original is None
    assert letter.reason == "oops"
    assert letter.errors[0]["type"] == "dead_letter_format"


REPLAY_CASES = [
    # (original, expected failing field or None, expected event id or None)
    (event_bytes(), None, "evt-1"),
    (event_bytes(touchpoint="social.ad_clik"), "touchpoint", None),
    (event_bytes(customer_id=None), "customer_id", None),
    (event_bytes(value=10), "currency", None),
    (event_bytes(occurred_at="2026-11-21T09:30:00+00:00"), "occurred_at", None),
    (b"{truncated", "(body)", None),
    (b"[]", "(body)", None),
]


@pytest.mark.parametrize(("original", "failing_field", "event_id"), REPLAY_CASES)
def test_replay_plan_revalidates_like_ingestion(
    original: bytes, failing_field: str | None, event_id: str | None
) -> None:
    plan = plan_replay([letter_for(original)], RULES)
    if failing_field is None:
        assert not plan.failing
        (_, event), = plan.ready
        assert event.event_id == event_id
        assert event.received_at == NOW
    else:
        assert not plan.ready
        (_, errors), = plan.failing
        assert failing_field in {e["field"] for e in errors}, errors


def test_an_original_without_event_id_gets_the_same_id_every_time() -> None:
    original = event_bytes(event_id=None)
    first = plan_replay([letter_for(original)], RULES).ready[0][1].event_id
    second = plan_replay([letter_for(original, offset=5)], RULES).ready[0][1].event_id
    assert first == second == replay_event_id(original)
    other = plan_replay([letter_for(event_bytes(event_id=None, customer_id="c-2"))], RULES)
    assert other.ready[0][1].event_id != first


@pytest.mark.parametrize(("event_source", "letter_source", "expected"), [
    ("webhook:hubspot", "profiles", "webhook:hubspot"),
    (None, "webhook:mailchimp", "webhook:mailchimp"),
    (None, "profiles", "import"),
    ("bogus source", "api", "api"),
])
def test_replayed_events_keep_where_they_came_from(
    event_source: str | None, letter_source: str, expected: str
) -> None:
    letter = letter_for(event_bytes(source=event_source), source=letter_source)
    assert plan_replay([letter], RULES).ready[0][1].source == expected


def test_a_catalog_fix_makes_a_dead_letter_replayable(tmp_path) -> None:
    extra = tmp_path / "touchpoints.json"
    entry = load_catalog()["social.ad_click"].model_dump(mode="json")
    entry["id"] = "social.kiosk_checkin"
    extra.write_text(json.dumps({"touchpoints": [entry]}))
    letter = letter_for(event_bytes(touchpoint="social.kiosk_checkin"))
    assert plan_replay([letter], RULES).failing
    fixed = replay_rules(Settings(touchpoint_catalog_file=extra), NOW)
    assert plan_replay([letter], fixed).ready


# --- real broker ------------------------------------------------------------------------


@pytest.fixture
def dead_letters(settings: Settings) -> Iterator[list[bytes]]:
    """Puts five dead letters on the test's topic: three replayable, two not."""
    now = datetime.now(UTC)
    originals = [
        event_bytes(event_id="evt-a", customer_id="c-a"),
        event_bytes(event_id="evt-b", customer_id="c-b", source="webhook:hubspot"),
        event_bytes(event_id=None, customer_id="c-c"),
        event_bytes(event_id="evt-d", touchpoint="nope.nothing"),
        b"\xff\xfe not json",
    ]
    records = [dead_letter_record(o, f"reason {i}", "profiles", now + timedelta(seconds=i),
                                  key=f"c-{i}".encode(), request_id=f"req-{i}")
               for i, o in enumerate(originals)]
    publisher = KafkaPublisher(settings)
    try:
        publisher.publish(settings.topic_dead_letter, records)
    finally:
        publisher.close()
    yield originals


def test_list_reads_every_dead_letter_and_commits_nothing(
    settings: Settings, dead_letters: list[bytes]
) -> None:
    listing = list_dead_letters(settings)
    assert listing.total == 5
    assert sorted(letter.reason for letter in listing.letters) == [f"reason {i}" for i in
                                                                   range(5)]
    assert {letter.original for letter in listing.letters} == set(dead_letters)
    assert list_dead_letters(settings).total == 5  # still there: nothing was consumed


def test_list_limit_keeps_the_newest(settings: Settings, dead_letters: list[bytes]) -> None:
    listing = list_dead_letters(settings, limit=2)
    assert listing.total == 5
    assert [letter.reason for letter in listing.letters] == ["reason 3", "reason 4"]


def test_an_absent_topic_lists_nothing(settings: Settings) -> None:
    assert list_dead_letters(settings).letters == []


def test_replay_republishes_valid_events_and_reports_the_rest(
    settings: Settings, dead_letters: list[bytes]
) -> None:
    rules = replay_rules(settings, datetime.now(UTC))
    progress: list[int] = []
    report = replay_dead_letters(settings, rules, on_progress=progress.append)
    assert report.read == 5 and sum(progress) == 5
    replayed_ids = {event_id for _, event_id in report.replayed}
    assert replayed_ids == {"evt-a", "evt-b", replay_event_id(dead_letters[2])}
    assert sorted(letter.reason for letter, _ in report.failing) == ["reason 3", "reason 4"]

    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, expected=3)
    assert {decode_event(r.value).event_id for r in records} == replayed_ids
    by_id = {decode_event(r.value).event_id: r for r in records}
    assert decode_event(by_id["evt-b"].value).source == "webhook:hubspot"
    assert header(by_id["evt-a"].headers, "ce_type") == EVENT_TYPE
    assert header(by_id["evt-a"].headers, "request_id") == "req-0"
    assert by_id["evt-a"].key == b"c-a"  # keyed by customer, like ingestion

    again = replay_dead_letters(settings, rules)
    assert {event_id for _, event_id in again.replayed} == replayed_ids  # same ids: counted once


def test_dry_run_publishes_nothing(settings: Settings, dead_letters: list[bytes]) -> None:
    report = replay_dead_letters(settings, replay_rules(settings, datetime.now(UTC)),
                                 dry_run=True)
    assert (len(report.replayed), len(report.failing)) == (3, 2)
    # A marker of our own, so the topic exists: it must be the only record there.
    marker = dead_letter_record(b"marker", "marker", "test", datetime.now(UTC))
    publisher = KafkaPublisher(settings)
    try:
        publisher.publish(settings.topic_touchpoints, [marker])
    finally:
        publisher.close()
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints,
                         timeout_s=5)
    assert [r.value for r in records] == [marker.value]


# --- command line -----------------------------------------------------------------------


def run_cli(argv: list[str], settings: Settings, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("COLUMNS", "200")  # a wide table: no folded words to search across
    for name in ("kafka_bootstrap_servers", "topic_touchpoints", "topic_dead_letter"):
        monkeypatch.setenv(name.upper(), str(getattr(settings, name)))
    parser = argparse.ArgumentParser(prog="touchpoint")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_list_json(settings: Settings, dead_letters: list[bytes],
                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert run_cli(["dlq", "list", "--limit", "3", "--json"], settings, monkeypatch) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["total"] == 5 and len(body["records"]) == 3
    assert {r["reason"] for r in body["records"]} == {"reason 2", "reason 3", "reason 4"}


def test_cli_list_table(settings: Settings, dead_letters: list[bytes],
                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert run_cli(["dlq", "list"], settings, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "newest 5 of 5" in out and "reason 4" in out and "social.ad_click" in out


def test_cli_replay_dry_run_then_replay(
    settings: Settings, dead_letters: list[bytes], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    assert run_cli(["dlq", "replay", "--dry-run"], settings, monkeypatch) == 1
    out = capsys.readouterr().out
    assert "would be republished" in out and "Still failing" in out
    assert run_cli(["dlq", "replay", "--json"], settings, monkeypatch) == 1
    body = json.loads(capsys.readouterr().out)
    assert len(body["replayed"]) == 3 and len(body["still_failing"]) == 2
    assert {e["field"] for f in body["still_failing"] for e in f["errors"]} >= {"touchpoint"}


def test_cli_reports_an_unreachable_broker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    down = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    assert run_cli(["dlq", "list"], down, monkeypatch) == 2
    assert "Kafka unavailable" in capsys.readouterr().err
