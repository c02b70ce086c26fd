"""The analytics report as Markdown or CSV: the same answers the API gives, for sharing.

Pure rendering of the API's response models. The CSV is tidy (one value per line:
section, item, metric, value) so every spreadsheet can pivot it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from services.profiles.analytics.schemas import (
    Attribution,
    Effectiveness,
    Journeys,
    Recommendations,
)

EFFECTIVENESS_METRICS = (
    "customers", "events", "conversions", "conversion_rate", "purchases", "revenue",
    "attributed_revenue", "average_rating", "cost", "roi",
)
FUNNEL_METRICS = ("customers", "dropped_off", "drop_off_rate", "median_hours_from_previous")


@dataclass(frozen=True)
class Report:
    effectiveness: Effectiveness
    attribution: Attribution
    journeys: Journeys
    recommendations: Recommendations


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def tidy_rows(report: Report) -> Iterator[tuple[str, str, str, str]]:
    for row in report.effectiveness.rows:
        for metric in EFFECTIVENESS_METRICS:
            yield "touchpoints", row.touchpoint, metric, _fmt(getattr(row, metric))
    for name, value in report.effectiveness.totals.model_dump().items():
        yield "totals", "all", name, _fmt(value)
    for model in report.attribution.models:
        for credit in model.credits:
            yield f"attribution:{model.model}", credit.key, "conversions", _fmt(credit.conversions)
            yield f"attribution:{model.model}", credit.key, "revenue", _fmt(credit.revenue)
    for step in report.journeys.funnel:
        for metric in FUNNEL_METRICS:
            yield "funnel", step.stage, metric, _fmt(getattr(step, metric))
    for drop in report.journeys.drop_off:
        yield "drop_off", drop.touchpoint, "customers", _fmt(drop.customers)
        yield "drop_off", drop.touchpoint, "share", _fmt(drop.share)
    for action in report.recommendations.actions:
        item = f"{action.action}@{action.model_version}"
        yield "recommendations", item, "decisions", _fmt(action.decisions)
        yield "recommendations", item, "outcomes", _fmt(action.outcomes)
        yield "recommendations", item, "treated_response_rate", _fmt(action.treated.response_rate)
        yield "recommendations", item, "holdout_response_rate", _fmt(action.holdout.response_rate)
        yield "recommendations", item, "response_lift", _fmt(action.response_lift)
        interval = action.response_lift_interval
        yield "recommendations", item, "response_lift_low", _fmt(interval and interval.low)
        yield "recommendations", item, "response_lift_high", _fmt(interval and interval.high)
        yield "recommendations", item, "revenue_lift", _fmt(action.revenue_lift)


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "item", "metric", "value"))
    writer.writerows(tidy_rows(report))
    return out.getvalue()


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def to_markdown(report: Report) -> str:
    f = report.effectiveness.filters
    scope = ", ".join(
        f"{name} {value}" for name, value in
        (("phase", f.phase), ("channel", f.channel), ("segment", f.segment)) if value
    )
    totals = report.effectiveness.totals
    lines = [
        f"# Touchpoint report {f.date_from} to {f.date_to}" + (f" ({scope})" if scope else ""),
        "",
        f"{totals.events:,} events, {totals.customers:,} customers reached, "
        f"{totals.purchases:,} purchases, revenue {totals.revenue:,.0f}, "
        f"touches per purchase {_fmt(totals.touches_per_purchase) or '-'}; a touch converts "
        f"when a purchase follows within {report.effectiveness.conversion_window_days} days.",
        "",
        "## Touchpoint effectiveness",
        "",
    ]
    lines += _table(
        ["touchpoint", "channel", "phase", *EFFECTIVENESS_METRICS],
        [[r.touchpoint, r.channel, r.phase, *(_fmt(getattr(r, m)) for m in EFFECTIVENESS_METRICS)]
         for r in report.effectiveness.rows],
    )
    a = report.attribution
    lines += ["", f"## Attribution of conversions by {a.key}", "",
              f"{a.journeys:,} journeys, {a.converted_journeys:,} converted.", ""]
    credit = {m.model: {c.key: c.conversions for c in m.credits} for m in a.models}
    lines += _table(
        [a.key, *credit], [[k, *(_fmt(credit[m].get(k)) for m in credit)] for k in a.keys]
    )
    lines += ["", "## Funnel", ""]
    lines += _table(
        ["stage", *FUNNEL_METRICS],
        [[s.stage, *(_fmt(getattr(s, m)) for m in FUNNEL_METRICS)] for s in report.journeys.funnel],
    )
    lines += ["", f"## Last touchpoint before dropping out "
              f"({report.journeys.inactivity_days} days without events)", ""]
    lines += _table(
        ["touchpoint", "customers", "share"],
        [[d.touchpoint, _fmt(d.customers), _fmt(d.share)] for d in report.journeys.drop_off],
    )
    lines += ["", "## Recommendation results (lift against holdout, 95% CI)", ""]
    rows = []
    for x in report.recommendations.actions:
        i = x.response_lift_interval
        rows.append([
            x.action, x.model_version, _fmt(x.decisions), _fmt(x.outcomes),
            _fmt(x.treated.response_rate), _fmt(x.holdout.response_rate),
            _fmt(x.response_lift), f"[{_fmt(i.low)}, {_fmt(i.high)}]" if i else "",
            _fmt(x.revenue_lift),
        ])
    lines += _table(
        ["action", "model", "decisions", "outcomes", "treated rate", "holdout rate", "lift",
         "95% CI", "revenue lift"], rows,
    )
    return "\n".join(lines) + "\n"
