"""Customer ids, e-mails and phone numbers never reach log output at INFO; DEBUG keeps them."""

from __future__ import annotations

import io
import logging

import pytest

from shared.logging import JsonFormatter, PersonalDataFilter, pseudonym

KEY = b"k" * 32


def render(level: int, message: str, *args, **extra) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PersonalDataFilter(KEY))
    logger = logging.getLogger("tests.personal_data")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.log(level, message, *args, extra=extra)
    return stream.getvalue()


@pytest.mark.parametrize(("message", "args", "secret"), [
    ("applied event for customer_id=%s", ("c-1001",), "c-1001"),
    ("refused: customer_id: '%s' erased", ("c-77",), "c-77"),
    ('payload {"customer_id": "%s", "touchpoint": "web.visit"}', ("cust-9",), "cust-9"),
    ("linked anonymous_id=%s", ("anon-42",), "anon-42"),
    ("contact %s bounced", ("lan.nguyen@example.vn",), "lan.nguyen@example.vn"),
    ("sms to %s failed", ("+84 912 345 678",), "912 345 678"),
    ("zalo follower %s", ("0912345678",), "0912345678"),
    ("order for customer %s", ("c-5",), "c-5"),
    ("deciding without a profile: unreadable profile for %s: bad", ("c-77",), "c-77"),
])
def test_info_lines_carry_a_pseudonym_not_the_id(message, args, secret):
    line = render(logging.INFO, message, *args)
    assert secret not in line
    assert "~" in line


def test_pseudonym_is_stable_and_keyed():
    assert pseudonym("c-1", KEY) == pseudonym("c-1", KEY)
    assert pseudonym("c-1", KEY) != pseudonym("c-2", KEY)
    assert pseudonym("c-1", KEY) != pseudonym("c-1", b"other")
    line = render(logging.WARNING, "customer_id=%s", "c-1")
    assert pseudonym("c-1", KEY) in line


def test_structured_fields_are_hashed():
    line = render(logging.INFO, "applied", customer_id="c-1001", topic="touchpoints.v1")
    assert "c-1001" not in line


def test_debug_keeps_ids_for_local_diagnosis():
    assert "c-1001" in render(logging.DEBUG, "customer_id=%s", "c-1001")


@pytest.mark.parametrize("text", [
    "consumer applied 500 events in 12 ms on partition 3",
    "replay caught up at 2026-11-20T09:30:00+07:00 (offset 1763900000000)",
    "batch of 1000000 records, lag 12345",
])
def test_ordinary_text_is_untouched(text):
    assert text in render(logging.INFO, text)
