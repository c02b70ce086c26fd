"""Public response shapes of the analytics API (what OpenAPI documents)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Segment = Literal["prospect", "first_time_buyer", "repeat_buyer"]
PhaseName = Literal["pre_purchase", "purchase", "post_purchase"]


class Label(BaseModel):
    en: str
    vi: str


class Filters(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    date_from: date = Field(alias="from", serialization_alias="from")
    date_to: date = Field(alias="to", serialization_alias="to")
    phase: PhaseName | None = None
    channel: str | None = None
    segment: Segment | None = None


class EffectivenessRow(BaseModel):
    touchpoint: str = Field(examples=["email.click"])
    label: Label
    channel: str = Field(examples=["email"])
    phase: str = Field(examples=["pre_purchase"])
    customers: int = Field(description="Distinct customers reached (HyperLogLog, ±1%).")
    events: int
    conversions: int = Field(description="Touches followed by a purchase within the window.")
    conversion_rate: float | None = Field(description="conversions / events")
    purchases: int = Field(description="Purchases made at this touchpoint.")
    revenue: float = Field(description="Order value of purchases made at this touchpoint.")
    attributed_revenue: float = Field(
        description="Revenue of purchases within the window after its touches, split equally "
        "over the touches in that window (linear within the window)."
    )
    ratings: int
    average_rating: float | None
    cost: float | None = Field(description="events x cost per event; null without a cost.")
    roi: float | None = Field(description="(attributed_revenue - cost) / cost")


class EffectivenessTotals(BaseModel):
    events: int
    customers: int
    purchases: int
    revenue: float
    touches_per_purchase: float | None = Field(
        description="Touches within the window before a purchase, per purchase."
    )
    cost: float


class Effectiveness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "filters": {"from": "2027-01-01", "to": "2027-01-31", "phase": None, "channel": None,
                    "segment": None},
        "conversion_window_days": 7,
        "rows": [{
            "touchpoint": "email.click", "label": {"en": "E-mail link click",
                                                   "vi": "Nhấp liên kết e-mail"},
            "channel": "email", "phase": "pre_purchase", "customers": 812, "events": 1040,
            "conversions": 130, "conversion_rate": 0.125, "purchases": 0, "revenue": 0.0,
            "attributed_revenue": 41600000.0, "ratings": 0, "average_rating": None,
            "cost": 312000.0, "roi": 132.3,
        }],
        "totals": {"events": 1040, "customers": 812, "purchases": 130, "revenue": 83200000.0,
                   "touches_per_purchase": 3.4, "cost": 312000.0},
    }]})

    filters: Filters
    conversion_window_days: int
    rows: list[EffectivenessRow]
    totals: EffectivenessTotals


class Credit(BaseModel):
    key: str
    conversions: float
    revenue: float


class ModelCredits(BaseModel):
    model: str = Field(examples=["markov_chain"])
    total_conversions: int
    total_revenue: float
    credits: list[Credit]


class Attribution(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "filters": {"from": "2027-01-01", "to": "2027-01-31", "phase": None, "channel": None,
                    "segment": None},
        "key": "channel", "journeys": 4200, "converted_journeys": 610, "half_life_days": 7.0,
        "keys": ["email", "zalo"],
        "models": [{"model": "last_touch", "total_conversions": 610, "total_revenue": 9.1e8,
                    "credits": [{"key": "email", "conversions": 250.0, "revenue": 3.7e8},
                                {"key": "zalo", "conversions": 360.0, "revenue": 5.4e8}]}],
    }]})

    filters: Filters
    key: Literal["channel", "touchpoint"]
    journeys: int = Field(description="Closed journeys in range (converted or gone quiet).")
    converted_journeys: int
    half_life_days: float
    keys: list[str]
    models: list[ModelCredits]


class SankeyNodeOut(BaseModel):
    id: str = Field(examples=["1:purchase"])
    name: str = Field(examples=["purchase"])
    depth: int
    customers: int


class SankeyLinkOut(BaseModel):
    source: str
    target: str
    value: int


class FunnelStepOut(BaseModel):
    stage: str
    customers: int
    dropped_off: int
    drop_off_rate: float | None
    rate_from_previous: float | None
    median_hours_from_previous: float | None = Field(
        description="Approximate (from wait-time buckets)."
    )
    mean_hours_from_previous: float | None


class DropOffOut(BaseModel):
    touchpoint: str
    label: Label
    channel: str
    customers: int
    share: float


class Journeys(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "filters": {"from": "2027-01-01", "to": "2027-01-31", "phase": None, "channel": None,
                    "segment": None},
        "facet": "phase",
        "sankey": {"nodes": [{"id": "0:pre_purchase", "name": "pre_purchase", "depth": 0,
                              "customers": 900},
                             {"id": "1:purchase", "name": "purchase", "depth": 1,
                              "customers": 300}],
                   "links": [{"source": "0:pre_purchase", "target": "1:purchase",
                              "value": 300}]},
        "funnel": [{"stage": "pre_purchase", "customers": 900, "dropped_off": 600,
                    "drop_off_rate": 0.667, "rate_from_previous": None,
                    "median_hours_from_previous": None, "mean_hours_from_previous": None}],
        "drop_off": [{"touchpoint": "web.product_view", "label": {"en": "Product page view",
                      "vi": "Xem trang sản phẩm"}, "channel": "web", "customers": 120,
                      "share": 0.3}],
        "inactivity_days": 30,
    }]})

    filters: Filters
    facet: Literal["phase", "journey_step"]
    sankey: dict[str, list[SankeyNodeOut] | list[SankeyLinkOut]]
    funnel: list[FunnelStepOut]
    drop_off: list[DropOffOut]
    inactivity_days: int


class IntervalOut(BaseModel):
    low: float
    high: float


class GroupOut(BaseModel):
    customers: int
    responses: int
    revenue: float
    response_rate: float | None
    revenue_per_customer: float | None


class ActionResult(BaseModel):
    action: str
    model_version: str
    decisions: int
    outcomes: int
    treated: GroupOut
    holdout: GroupOut
    response_lift: float | None
    response_lift_interval: IntervalOut | None = Field(description="95% Newcombe interval.")
    relative_response_lift: float | None
    revenue_lift: float | None
    revenue_lift_interval: IntervalOut | None = Field(description="95% Welch interval.")


class Recommendations(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "filters": {"from": "2027-01-01", "to": "2027-01-31", "phase": None, "channel": None,
                    "segment": None},
        "conversion_window_days": 7,
        "actions": [{
            "action": "zalo_reminder", "model_version": "2027.01.1", "decisions": 2000,
            "outcomes": 260,
            "treated": {"customers": 1800, "responses": 250, "revenue": 9.0e7,
                        "response_rate": 0.139, "revenue_per_customer": 50000.0},
            "holdout": {"customers": 200, "responses": 10, "revenue": 4.0e6,
                        "response_rate": 0.05, "revenue_per_customer": 20000.0},
            "response_lift": 0.089, "response_lift_interval": {"low": 0.05, "high": 0.12},
            "relative_response_lift": 1.78, "revenue_lift": 30000.0,
            "revenue_lift_interval": {"low": 8000.0, "high": 52000.0},
        }],
    }]})

    filters: Filters
    conversion_window_days: int
    actions: list[ActionResult]


class LiveRate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "seconds": 300, "series": [{"t": 1800000000, "events": 42}],
        "events_last_minute": 2400, "events_per_second": 40.0,
        "latest_event_time": "2027-01-20T09:30:00Z",
    }]})

    seconds: int
    series: list[dict[str, int]] = Field(description="Events processed per second, oldest first.")
    events_last_minute: int
    events_per_second: float = Field(description="Average over the last minute.")
    latest_event_time: str | None
