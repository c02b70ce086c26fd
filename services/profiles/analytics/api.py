"""`/v1/analytics/...` (JSON) and `/dashboard` (the web page and its local assets).

Plain `def` routes: the sync Redis client runs in FastAPI's thread pool, never on the event
loop. The JSON routes need an API key with the `profiles:read` scope (they expose business
aggregates); the dashboard page and its assets are public and ask for a key when the API
answers 401. The routes find their reader on `app.state.analytics_reader`; when the app did not put
one there, the first request builds it from `app.state.settings` (or `app.state.runtime`)
and the app's sync Redis client, or its own client from `REDIS_URL`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import redis
from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse

from services.profiles.analytics.costs import load_costs
from services.profiles.analytics.reader import MAX_RANGE_DAYS, AnalyticsReader, ReaderConfig
from services.profiles.analytics.schemas import (
    Attribution,
    Effectiveness,
    Filters,
    Journeys,
    LiveRate,
    Recommendations,
    Segment,
)
from services.profiles.analytics.store import AggregateConfig, AnalyticsStore
from services.web.auth import require_scope
from shared.errors import NotFoundError
from shared.settings import Settings, load_settings
from shared.touchpoints import load_catalog

DEFAULT_RANGE_DAYS = 90
STATIC_DIR = Path(str(resources.files("services.profiles.analytics").joinpath("static")))
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

READ_SCOPE = "profiles:read"
router = APIRouter()
Reading = [Depends(require_scope(READ_SCOPE))]
_build_lock = threading.Lock()


def build_reader(settings: Settings, client: redis.Redis) -> AnalyticsReader:
    """The reader of one app or command: the only place analytics settings are read."""
    store = AnalyticsStore(client, settings.redis_namespace, aggregate_config(settings))
    return AnalyticsReader(
        store, load_catalog(settings.touchpoint_catalog_file),
        load_costs(settings.touchpoint_costs_file),
        ReaderConfig(
            conversion_window_days=settings.analytics_conversion_window_days,
            inactivity_days=settings.analytics_inactivity_days,
            half_life_days=settings.attribution_half_life_days,
        ),
    )


def aggregate_config(settings: Settings) -> AggregateConfig:
    return AggregateConfig(
        conversion_window_days=settings.analytics_conversion_window_days,
        customer_ttl_days=settings.analytics_customer_ttl_days,
        half_life_days=settings.attribution_half_life_days,
    )


def _reader(request: Request) -> AnalyticsReader:
    state = request.app.state
    reader = getattr(state, "analytics_reader", None)
    if reader is not None:
        return reader
    with _build_lock:
        reader = getattr(state, "analytics_reader", None)
        if reader is None:
            runtime = getattr(state, "runtime", None)
            settings = getattr(state, "settings", None) or getattr(runtime, "settings", None)
            settings = settings if isinstance(settings, Settings) else load_settings()
            client = getattr(state, "redis", None) or getattr(runtime, "redis", None)
            if not isinstance(client, redis.Redis):
                client = redis.Redis.from_url(settings.redis_url)
            reader = build_reader(settings, client)
            state.analytics_reader = reader
    return reader


Reader = Annotated[AnalyticsReader, Depends(_reader)]


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error"}]
    )


def today_utc() -> date:
    return datetime.now(UTC).date()


def _filters(
    request: Request,
    date_from: Annotated[date | None, Query(
        alias="from", description=f"First day (UTC), inclusive. Default: {DEFAULT_RANGE_DAYS} "
        "days before `to`.", examples=["2027-01-01"])] = None,
    date_to: Annotated[date | None, Query(
        alias="to", description="Last day (UTC), inclusive. Default: today.",
        examples=["2027-01-31"])] = None,
    phase: Annotated[Literal["pre_purchase", "purchase", "post_purchase"] | None, Query(
        description="Only touchpoints of this phase.")] = None,
    channel: Annotated[str | None, Query(
        description="Only this channel (funnel: customers whose first touch was on it).",
        examples=["zalo"])] = None,
    segment: Annotated[Segment | None, Query(
        description="Buying stage of the customer when the event happened.")] = None,
) -> Filters:
    end = date_to or today_utc()
    start = date_from or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise _invalid("from", f"must not be after `to` ({end})")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise _invalid("from", f"the range may span at most {MAX_RANGE_DAYS} days")
    if channel is not None:
        reader = _reader(request)
        if channel not in reader.catalog.channels:
            raise _invalid("channel", f"unknown channel {channel!r}")
    return Filters(date_from=start, date_to=end, phase=phase, channel=channel, segment=segment)


Range = Annotated[Filters, Depends(_filters)]


@router.get(
    "/v1/analytics/touchpoints", dependencies=Reading,
    response_model=Effectiveness, tags=["analytics"],
    summary="Touchpoint effectiveness: reach, conversions, revenue, ratings, cost and ROI",
)
def touchpoint_effectiveness(reader: Reader, filters: Range) -> Effectiveness:
    """One row per touchpoint (and channel and phase) with events in the range.

    A touch *converts* when the same customer purchases within the conversion window after
    it; the purchase's revenue is split equally over the touches in that window
    (`attributed_revenue`), which is what ROI compares with the cost.
    """
    return reader.effectiveness(filters)


@router.get(
    "/v1/analytics/attribution", dependencies=Reading,
    response_model=Attribution, tags=["analytics"],
    summary="Conversions and revenue credited by every attribution model, side by side",
)
def attribution(
    reader: Reader, filters: Range,
    key: Annotated[Literal["channel", "touchpoint"], Query(
        description="Credit channels or catalog touchpoints.")] = "channel",
) -> Attribution:
    """First/last touch, linear, time decay, position based (40/20/40), Markov removal
    effect and Shapley, over journeys that ended in the range (date and segment filters)."""
    return reader.attribution(filters, key)


@router.get(
    "/v1/analytics/journeys", dependencies=Reading,
    response_model=Journeys, tags=["analytics"],
    summary="Journey flows (Sankey), the funnel with drop-off, and where customers stop",
)
def journeys(
    reader: Reader, filters: Range,
    facet: Annotated[Literal["phase", "journey_step"], Query(
        description="Flows between phases or between journey steps.")] = "phase",
) -> Journeys:
    return reader.journeys(filters, today_utc(), facet)


@router.get(
    "/v1/analytics/recommendations", dependencies=Reading,
    response_model=Recommendations, tags=["analytics"],
    summary="Recommendation results per action and model version, lift against holdout",
)
def recommendations(reader: Reader, filters: Range) -> Recommendations:
    """Decisions made in the range; an outcome is an answer naming the decision or a purchase
    within the conversion window after it (holdout customers included)."""
    return reader.recommendations(filters)


@router.get(
    "/v1/analytics/live", dependencies=Reading,
    response_model=LiveRate, tags=["analytics"],
    summary="Events processed per second, over the last minutes",
)
def live(
    reader: Reader,
    seconds: Annotated[int, Query(ge=10, le=3600, description="Length of the series.")] = 300,
) -> LiveRate:
    return reader.live(int(time.time()), seconds)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    html = (STATIC_DIR / "dashboard.html").read_text("utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/static/{name:path}", include_in_schema=False)
def dashboard_asset(name: str) -> FileResponse:
    path = (STATIC_DIR / name).resolve()
    if STATIC_DIR.resolve() not in path.parents or not path.is_file():
        raise NotFoundError(f"no dashboard asset {name!r}")
    media_type = STATIC_TYPES.get(path.suffix)
    if media_type is None:
        raise NotFoundError(f"no dashboard asset {name!r}")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "max-age=3600"})
