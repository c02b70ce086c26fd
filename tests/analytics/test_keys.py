"""Range buckets cover every day of a range exactly once."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.profiles.analytics.keys import range_buckets, week_bucket


def days_of(bucket: str) -> list[date]:
    if bucket.startswith("w"):
        monday = date(1970, 1, 1) + timedelta(days=int(bucket[1:]) * 7 - 3)
        return [monday + timedelta(days=k) for k in range(7)]
    if len(bucket) == 7:
        year, month = map(int, bucket.split("-"))
        return [date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]
    return [date.fromisoformat(bucket)]


def test_weeks_start_on_monday():
    assert week_bucket(date(1970, 1, 1)) == "w0"
    assert week_bucket(date(1969, 12, 29)) == "w0"  # the Monday of that week
    assert week_bucket(date(1970, 1, 5)) == "w1"
    assert days_of(week_bucket(date(2027, 1, 20)))[0].weekday() == 0


def test_a_quarter_reads_months_weeks_and_edge_days():
    assert range_buckets(date(2026, 8, 26), date(2026, 11, 23)) == [
        "2026-08-26", "2026-08-27", "2026-08-28", "2026-08-29", "2026-08-30", "2026-08-31",
        "2026-09", "2026-10", "2026-11-01", "w2966", "w2967", "w2968", "2026-11-23",
    ]


@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(0, 400))
def test_every_day_is_covered_exactly_once(start, length):
    end = start + timedelta(days=length)
    covered = [day for bucket in range_buckets(start, end) for day in days_of(bucket)]
    assert sorted(covered) == [start + timedelta(days=k) for k in range(length + 1)]
