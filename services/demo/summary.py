"""What a demo run measured, and the tables that show it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from services.demo.response_model import Decided
from services.demo.training_step import ESTIMATORS, TrainingResult

POSITIVE = frozenset({"opened", "clicked", "replied", "converted"})


@dataclass
class Cohort:
    customers: int = 0
    answered: int = 0
    buyers: int = 0
    revenue: float = 0.0

    def rate(self, count: int) -> float:
        return count / self.customers if self.customers else float("nan")


@dataclass
class RoundResult:
    label: str
    decisions: int = 0
    actions: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)
    treated: Cohort = field(default_factory=Cohort)
    holdout: Cohort = field(default_factory=Cohort)
    unsubscribed: int = 0
    degraded: int = 0  # answers from the fallback policy (profile read too slow)
    seconds: float = 0.0
    active: set[str] = field(default_factory=set)  # customers who answered or bought

    def record(self, decision: Decided, events: list[dict[str, Any]]) -> None:
        self.decisions += 1
        group = self.holdout if decision.holdout else self.treated
        group.customers += 1
        if not decision.holdout:
            self.actions[decision.action_id or "(none)"] += 1
        outcomes = {(e.get("properties") or {}).get("outcome") for e in events
                    if (e.get("context") or {}).get("decision_id")}
        if events:
            self.active.add(decision.customer_id)
        if outcomes & POSITIVE:
            group.answered += 1
        if "unsubscribed" in outcomes:
            self.unsubscribed += 1
        purchases = [e for e in events if e["touchpoint"] == "web.purchase"]
        if purchases:
            group.buyers += 1
            group.revenue += sum(float(e.get("value") or 0) for e in purchases)

    @property
    def served_by(self) -> str:
        return ", ".join(f"{version} ({policy})" for (version, policy), _ in
                         self.versions.most_common(2))


@dataclass
class Summary:
    customers: int
    phases: dict[str, int]
    api_events: int
    api_accepted: int
    webhook_events: dict[str, int]
    webhook_accepted: dict[str, int]
    webhook_deliveries: dict[str, int]
    rounds: list[RoundResult]
    training: TrainingResult
    model_served: bool
    problems: list[str]
    dashboard: str
    requests: int
    retries: int
    seconds: float
    degraded: int = 0

    @property
    def events_sent(self) -> int:
        return self.api_events + sum(self.webhook_events.values())

    @property
    def events_accepted(self) -> int:
        return self.api_accepted + sum(self.webhook_accepted.values())

    @property
    def decisions(self) -> int:
        return sum(r.decisions for r in self.rounds)


def _money(value: float) -> str:
    return f"{value:,.0f} VND"


def _pct(value: float) -> str:
    return "-" if value != value else f"{value:.2%}"


def _estimate(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    return f"{entry['value']:.4f} [{entry['ci_low']:.4f}, {entry['ci_high']:.4f}]"


def events_table(s: Summary) -> Table:
    table = Table(title="Events sent", title_justify="left")
    for column in ("route", "requests", "events sent", "acknowledged"):
        table.add_column(column, justify="right" if column != "route" else "left")
    table.add_row("POST /v1/events (batches)", "-", f"{s.api_events:,}", f"{s.api_accepted:,}")
    for provider in sorted(s.webhook_events):
        table.add_row(f"webhook: {provider} (signed)", f"{s.webhook_deliveries[provider]:,}",
                      f"{s.webhook_events[provider]:,}",
                      f"{s.webhook_accepted.get(provider, 0):,}")
    table.add_row("[bold]total[/]", f"{s.requests:,} HTTP ({s.retries:,} retried)",
                  f"[bold]{s.events_sent:,}[/]", f"[bold]{s.events_accepted:,}[/]")
    return table


def phases_table(s: Summary) -> Table:
    table = Table(title=f"{s.customers:,} customers by phase (after their history)",
                  title_justify="left")
    table.add_column("phase")
    table.add_column("customers", justify="right")
    for phase, count in s.phases.items():
        table.add_row(phase, f"{count:,}")
    return table


def rounds_table(s: Summary) -> Table:
    table = Table(title="Decisions and answers (lift against the holdout group)",
                  title_justify="left")
    for column in ("round", "served by", "decisions", "holdout", "answered", "buyers",
                   "holdout buyers", "revenue / customer", "holdout revenue / customer",
                   "unsubscribed"):
        table.add_column(column, justify="left" if column in ("round", "served by") else "right")
    for r in s.rounds:
        t, h = r.treated, r.holdout
        table.add_row(
            r.label, r.served_by, f"{r.decisions:,}", f"{h.customers:,}",
            _pct(t.rate(t.answered)), _pct(t.rate(t.buyers)), _pct(h.rate(h.buyers)),
            _money(t.revenue / t.customers if t.customers else 0),
            _money(h.revenue / h.customers if h.customers else 0), f"{r.unsubscribed:,}",
        )
    return table


def actions_table(s: Summary) -> Table:
    table = Table(title="Actions chosen per round (first action, outside the holdout)",
                  title_justify="left")
    table.add_column("action")
    for r in s.rounds:
        table.add_column(r.label, justify="right")
    names = sorted({a for r in s.rounds for a in r.actions},
                   key=lambda a: -sum(r.actions[a] for r in s.rounds))
    for name in names:
        table.add_row(name, *(f"{r.actions[name]:,}" for r in s.rounds))
    return table


def model_table(s: Summary) -> Table:
    t = s.training
    table = Table(title=f"Model {t.version}: trained on {t.rows:,} decisions with closed "
                  f"windows ({t.positives:,} positive), off-policy estimates with 95% CI",
                  title_justify="left")
    table.add_column("policy")
    table.add_column("estimator")
    table.add_column("value of a decision [95% CI]")
    table.add_row("cold start (as logged)", "on-policy mean", _estimate(t.cold_start))
    for method in ESTIMATORS:
        table.add_row(f"{t.version} (greedy)", method, _estimate(t.estimates.get(method)))
    dr = t.estimates.get("DR")
    if dr:
        lift = dr["value"] - t.cold_start["value"]
        verdict = "beats" if t.beats_cold_start else "does not beat"
        table.caption = (f"DR: {t.version} {verdict} the cold-start policy by {lift:+.4f} "
                         f"positive answers per decision; "
                         + ("promoted" if t.promoted else f"not promoted: {t.refusal}"))
    return table


def render(summary: Summary, console: Console) -> None:
    console.print(Group(events_table(summary), phases_table(summary), rounds_table(summary),
                        actions_table(summary), model_table(summary)))
    if summary.problems:
        console.print(f"[yellow]{len(summary.problems)} item(s) set aside by the services[/], "
                      f"first: {summary.problems[0]}")
    if summary.degraded:
        console.print(f"[yellow]{summary.degraded:,} decision(s) answered degraded[/] (profile "
                      "read too slow; the prior policy decided on an empty profile)")
    served = "served by the recommender" if summary.model_served else "NOT served"
    console.print(f"model {summary.training.version}: {served}")
    console.print(f"finished in {summary.seconds:.0f} s; dashboard: [bold]{summary.dashboard}[/]")
