"""The Redis key schema of the analytics aggregates: the one place their names are built.

The Lua scripts in `lua/` build the same names (see `lua/common.lua`); `docs/analytics.md`
lists every key. All keys live under `<namespace>:an`:

    :d:<day>:tp                  hash  per touchpoint|channel|phase|segment: e events,
                                       c converted touches, ar attributed revenue, p purchases,
                                       r purchase revenue, rn/rs rating count/sum
    :d:<day>:u:<dim>             HLL   customers reached per touchpoint|channel|phase|segment
    :d:<day>:purchases           hash  per segment: n purchases, t touches in the window, r revenue
    :d:<bucket>:<segment>:att:<v>:<shard>
                                 hash  attribution sums of journeys that ended in the bucket
                                       (a day, a week `w<n>` or a month `YYYY-MM`, all three
                                       kept so a range reads whole months and weeks), per
                                       view v = ch (channel) or tp (touchpoint), spread over
                                       8 shards by field: v|jn, v|jc, v|jr
                                       journeys, conversions, revenue; v|t|<from>><to>
                                       transitions (from ^ = start); v|e|<key>|c or n journeys
                                       ending there; v|k|<sorted,codes>|n, c, r per coalition
                                       (codes from :names); v|m|<model>|<key>|c, r credit of
                                       the rule-based models. Earlier versions wrote one
                                       hash without :<shard>, coalitions as v|s|<sorted,keys>
    :names                       hash  name -> short code (base 36, in order of first use)
    :d:<day>:<segment>:flow      hash  Sankey: <facet>|n|<depth>:<value>, <facet>|l|<from>><to>
    :d:<cohort day>:funnel       hash  <first channel>|<stage>|n, |w<bucket>, |ws (wait seconds)
    :d:<day>:drop                hash  non-buyers by the touchpoint|channel of their last event
    :d:<day>:rec                 hash  <action>|<model version>|<t|h>|n, |r, |v, |v2
    :c:<subject>:st              string per-customer state (TTL), msgpack: layout version,
                                 fields under 1-2 letter names (stage, last phase/step,
                                 cohort, purchases...; `lua/common.lua` lists them), the last
                                 512 event ids (6 bytes each), the open journey's touches;
                                 the layout without a version is rewritten when next saved
    :c:<subject>:dec             zset  open decisions (TTL)
    :c:<subject>:s|ids|tx        the same state as kept by earlier versions (hash, string,
                                 list), moved into `st` when the customer is next seen
    :c:<subject>:seen            zset event ids remembered by earlier versions, until it expires
    :dec:<decision id>           hash  one decision: k (action|version|group), day, r, v
    :open                        zset  customers with an open journey, by last touch (ms)
    :rate:<second>               string events processed in that second (expires in 1 h)
    :watermark                   string latest event time seen (ms)

Days are UTC dates (`2027-01-20`). Names are plain (no Cluster hash tags): the scripts touch
per-day and per-customer keys together, so analytics needs a single Redis node or a primary.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

SEGMENTS = ("prospect", "first_time_buyer", "repeat_buyer")


def prefix(namespace: str) -> str:
    return f"{namespace}:an"


def day_key(namespace: str, day: date | str, name: str) -> str:
    return f"{prefix(namespace)}:d:{day}:{name}"


def touchpoint_stats_key(namespace: str, day: date | str) -> str:
    return day_key(namespace, day, "tp")


def reach_key(namespace: str, day: date | str, dim: str) -> str:
    return day_key(namespace, day, f"u:{dim}")


def purchases_key(namespace: str, day: date | str) -> str:
    return day_key(namespace, day, "purchases")


def week_bucket(day: date) -> str:
    """Monday-based weeks numbered from the week of 1970-01-01 (as `lua/common.lua`)."""
    return f"w{((day - date(1970, 1, 1)).days + 3) // 7}"


def range_buckets(start: date, end: date) -> list[str]:
    """Days, weeks and months that cover `start`..`end` (inclusive) exactly once, with as
    few buckets as possible: whole months first, then whole weeks, single days at the edges."""
    buckets: list[str] = []
    day = start
    while day <= end:
        month_end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        if day.day == 1 and month_end <= end:
            buckets.append(f"{day:%Y-%m}")
            day = month_end + timedelta(days=1)
            continue
        week_end = day + timedelta(days=6)
        next_month = month_end + timedelta(days=1)
        whole_next_month = next_month.replace(
            day=calendar.monthrange(next_month.year, next_month.month)[1]
        ) <= end
        if (day.weekday() == 0 and week_end <= end
                and not (week_end >= next_month and whole_next_month)):
            buckets.append(week_bucket(day))
            day = week_end + timedelta(days=1)
            continue
        buckets.append(day.isoformat())
        day += timedelta(days=1)
    return buckets


ATTRIBUTION_SHARDS = 8  # hashes per bucket, segment and view (`lua/common.lua`)


def attribution_keys(namespace: str, bucket: date | str, segment: str, view: str) -> list[str]:
    """The hashes of one bucket (a day, a week or a month, `range_buckets`), segment and view
    (`ch` or `tp`): every shard, and the unsharded hash that earlier versions wrote."""
    base = day_key(namespace, bucket, f"{segment}:att:{view}")
    return [base] + [f"{base}:{shard}" for shard in range(ATTRIBUTION_SHARDS)]


def names_key(namespace: str) -> str:
    """Name -> short code of the names in coalition fields."""
    return f"{prefix(namespace)}:names"


def flow_key(namespace: str, day: date | str, segment: str) -> str:
    return day_key(namespace, day, f"{segment}:flow")


def funnel_key(namespace: str, day: date | str) -> str:
    return day_key(namespace, day, "funnel")


def drop_key(namespace: str, day: date | str) -> str:
    return day_key(namespace, day, "drop")


def recommendations_key(namespace: str, day: date | str) -> str:
    return day_key(namespace, day, "rec")


def rate_key(namespace: str, second: int) -> str:
    return f"{prefix(namespace)}:rate:{second}"


def watermark_key(namespace: str) -> str:
    return f"{prefix(namespace)}:watermark"


def open_journeys_key(namespace: str) -> str:
    return f"{prefix(namespace)}:open"


CUSTOMER_STATE = ("st", "dec", "s", "tx", "ids", "seen")


def customer_state_key(namespace: str, subject: str) -> str:
    return f"{prefix(namespace)}:c:{subject}:st"


def customer_state_keys(namespace: str, subject: str) -> list[str]:
    """Every per-customer key (the Lua scripts build the same names)."""
    return [f"{prefix(namespace)}:c:{subject}:{name}" for name in CUSTOMER_STATE]
