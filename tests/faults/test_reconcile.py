"""The reconciliation itself: it must catch every way a fault can lose or double data."""

from __future__ import annotations

import pytest

from services.reliability.reconcile import Outcome, ProfileCount, ScenarioResult, reconcile
from services.reliability.report import render_table, replace_table


def ok(event_id: str, customer: str = "c1") -> Outcome:
    return Outcome(event_id, customer, 202)


def profile(customer: str, *ids: str, counted: int | None = None) -> ProfileCount:
    return ProfileCount(customer, len(ids) if counted is None else counted, ids)


CASES = [
    # (name, outcomes, profiles, missing, duplicates, landed_without_ack, error fragment)
    ("all in once", [ok("e1"), ok("e2")], [profile("c1", "e1", "e2")], 0, 0, 0, None),
    ("acknowledged but missing", [ok("e1"), ok("e2")], [profile("c1", "e1")], 1, 0, 0,
     "missing"),
    ("applied twice (timeline)", [ok("e1")], [profile("c1", "e1", "e1")], 0, 1, 0, None),
    ("applied twice (counter)", [ok("e1")], [profile("c1", "e1", counted=2)], 0, 1, 0, None),
    ("503 that landed", [Outcome("e1", "c1", 503, "5")], [profile("c1", "e1")], 0, 0, 1, None),
    ("503 without Retry-After", [Outcome("e1", "c1", 503)], [], 0, 0, 0, "Retry-After"),
    ("500", [Outcome("e1", "c1", 500)], [], 0, 0, 0, "HTTP 500"),
    ("hung request", [Outcome("e1", "c1", None, transport_error="ReadTimeout")], [], 0, 0, 0,
     "ReadTimeout"),
    ("never sent", [ok("e1")], [profile("c1", "e1", "zz")], 0, 0, 0, "never sent"),
    ("wrong customer", [ok("e1", "c1")], [profile("c2", "e1")], 0, 0, 0, "another customer"),
    ("retried after 503", [Outcome("e1", "c1", 503, "5"), ok("e1")], [profile("c1", "e1")],
     0, 0, 0, None),
]


@pytest.mark.parametrize(("name", "outcomes", "profiles", "missing", "duplicates", "landed",
                          "error"), CASES, ids=[c[0] for c in CASES])
def test_reconcile(name, outcomes, profiles, missing, duplicates, landed, error):
    result = reconcile(ScenarioResult(name, "nothing"), outcomes,
                       {p.customer_id: p for p in profiles})
    assert (result.missing, result.duplicates, result.landed_without_ack) == (
        missing, duplicates, landed)
    if error is None:
        assert result.errors == []
        assert result.ok == (missing == 0 and duplicates == 0)
    else:
        assert any(error in e for e in result.errors), result.errors
        assert not result.ok


def test_table_is_rendered_between_markers():
    result = reconcile(ScenarioResult("s", "hang | stop"), [ok("e1")], {"c1": profile("c1", "e1")})
    run = {"finished_at": "2026-11-23T00:00:00+00:00", "duration_s": 3,
           "scenarios": [result.as_dict()]}
    document = "intro\n<!-- fault-results:begin -->\nold\n<!-- fault-results:end -->\nrest\n"
    updated = replace_table(document, render_table(run))
    assert "old" not in updated and updated.startswith("intro") and updated.endswith("rest\n")
    assert "| s | hang \\| stop | 1 | 1 | 1 | 0 | 0 | 0 | 0 | none |" in updated
