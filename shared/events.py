"""The touchpoint event: who met the business, where, when, why, and with what outcome.

Version 1 of the event contract. `docs/events.md` documents every field with an example.
Validation against the catalog and the clock happens in `validate_event`, which takes both as
arguments so the model stays pure.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.errors import InvalidEventError
from shared.touchpoints import ConsentStatus, JourneyStep, Phase, TouchpointCatalog

SCHEMA_VERSION = 1
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_PROPERTIES = 50

# Ids are opaque to us but must be safe in keys, logs and URLs: no spaces, slashes or control
# characters. E-mail addresses and E.164 phone numbers fit.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+\-]+$")
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PropertyKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.\-]+$")]
PropertyValue = Annotated[str, StringConstraints(max_length=1000)] | bool | int | float | None
Source = Annotated[
    str,
    StringConstraints(pattern=r"^(api|import|simulator|recommender|webhook:[a-z0-9_\-]{1,40})$"),
]


class FieldProblem(ValueError):
    """A cross-field rule broken by one named field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class EventContext(BaseModel):
    """Why and in which setting the touchpoint happened."""

    model_config = ConfigDict(extra="forbid")

    campaign: ShortText | None = Field(None, examples=["tet-2027-flash-sale"])
    message: ShortText | None = Field(None, examples=["flash-sale-push-3"])
    decision_id: Identifier | None = Field(
        None, description="Set when the event answers one of our recommendations."
    )
    action_id: Identifier | None = Field(None, description="The recommended action answered.")
    need: ShortText | None = Field(None, examples=["saving money"])
    placement: ShortText | None = Field(None, examples=["facebook-feed"])
    medium: ShortText | None = Field(None, examples=["cpc"])
    referrer: Annotated[str, StringConstraints(max_length=2048)] | None = None
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    device: ShortText | None = Field(None, examples=["mobile"])
    locale: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] | None = None
    timezone: ShortText | None = Field(None, examples=["Asia/Ho_Chi_Minh"])


class TouchpointEvent(BaseModel):
    """One touchpoint: a moment at which a customer or visitor met the business."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "evt-2027-0001",
                    "customer_id": "c-1001",
                    "occurred_at": "2027-01-20T09:30:00+07:00",
                    "touchpoint": "social.ad_click",
                    "context": {"campaign": "tet-2027-flash-sale", "need": "saving money"},
                }
            ]
        },
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Identifier = Field(
        default_factory=lambda: uuid.uuid4().hex,
        description="Idempotency key: sending the same event_id twice counts once.",
    )
    customer_id: Identifier | None = Field(None, description="Known customer (CRM id).")
    anonymous_id: Identifier | None = Field(None, description="Visitor or device id.")
    occurred_at: AwareDatetime = Field(description="When it happened, with a time zone.")
    received_at: AwareDatetime | None = Field(None, description="Set by the server.")
    touchpoint: Annotated[str, StringConstraints(min_length=3, max_length=80)] = Field(
        description="Catalog id, `channel.action`.", examples=["web.product_view"]
    )
    channel: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        None, description="Defaults to the touchpoint's channel."
    )
    phase: Phase | None = Field(None, description="Defaults to the touchpoint's phase.")
    journey_step: JourneyStep | None = Field(None, description="Defaults to the catalog's.")
    context: EventContext = Field(default_factory=EventContext)
    value: float | None = Field(None, ge=0, le=1e12, description="Order value.")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = Field(
        None, description="ISO 4217 code, required with value.", examples=["VND"]
    )
    rating: int | None = Field(None, ge=1, le=5, description="Star rating 1-5.")
    nps: int | None = Field(None, ge=0, le=10, description="Net Promoter answer 0-10.")
    sentiment: Literal["positive", "neutral", "negative"] | None = None
    consent: dict[Annotated[str, StringConstraints(max_length=40)], ConsentStatus] | None = Field(
        None, description="Consent changes by channel.", examples=[{"email": "opt_in"}]
    )
    properties: dict[PropertyKey, PropertyValue] = Field(
        default_factory=dict, description=f"Free-form scalars, at most {MAX_PROPERTIES} keys."
    )
    source: Source = Field("api", description="api, import or webhook:<provider>; set by us.")

    @field_validator("value", mode="before")
    @classmethod
    def _finite_value(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("properties")
    @classmethod
    def _bounded_properties(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_PROPERTIES:
            raise ValueError(f"at most {MAX_PROPERTIES} keys, got {len(value)}")
        for key, item in value.items():
            if isinstance(item, float) and not math.isfinite(item):
                raise FieldProblem(f"properties.{key}", "must be a finite number")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value < EARLIEST_OCCURRED_AT:
            raise ValueError(f"must not be before {EARLIEST_OCCURRED_AT.date()}")
        rules = _rules(info)
        if rules is not None and value > rules.now + timedelta(seconds=rules.max_future_skew_s):
            raise ValueError(
                f"is more than {rules.max_future_skew_s} s in the future (server time "
                f"{rules.now.isoformat(timespec='seconds')})"
            )
        return value

    @field_validator("touchpoint")
    @classmethod
    def _known_touchpoint(cls, value: str, info: ValidationInfo) -> str:
        rules = _rules(info)
        if rules is not None and value not in rules.catalog:
            matches = rules.catalog.close_matches(value)
            hint = f"; did you mean {', '.join(matches)}?" if matches else ""
            raise ValueError(f"unknown touchpoint {value!r}{hint} (GET /v1/touchpoints lists all)")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo) -> TouchpointEvent:
        if self.customer_id is None and self.anonymous_id is None:
            raise FieldProblem("customer_id", "customer_id or anonymous_id is required")
        if self.value is not None and self.currency is None:
            raise FieldProblem("currency", "is required when value is set")
        rules = _rules(info)
        if rules is not None:
            entry = rules.catalog[self.touchpoint]
            self.channel = self.channel or entry.channel
            self.phase = self.phase or entry.phase
            self.journey_step = self.journey_step or entry.journey_step
            if self.channel not in rules.catalog.channels:
                raise FieldProblem("channel", f"unknown channel {self.channel!r}")
        return self

    @property
    def identity(self) -> str:
        """The partition key: the customer id, else the anonymous id."""
        return self.customer_id or self.anonymous_id  # type: ignore[return-value]


@dataclass(frozen=True)
class ValidationRules:
    """What validation checks an incoming event against besides its own shape."""

    catalog: TouchpointCatalog
    now: datetime
    max_future_skew_s: int = 300


def _rules(info: ValidationInfo) -> ValidationRules | None:
    context = info.context
    return context.get("rules") if isinstance(context, Mapping) else None


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Pydantic errors as `{"field", "message", "type"}` with dotted field paths."""
    problems = []
    for error in exc.errors(include_url=False):
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            field, message = cause.field, str(cause)
        else:
            field = ".".join(str(part) for part in error["loc"]) or "(body)"
            message = error["msg"].removeprefix("Value error, ")
        problems.append(
            {"field": f"{prefix}{field}", "message": message, "type": error["type"]}
        )
    return problems


def validate_event(
    raw: Any, rules: ValidationRules, source: str = "api", prefix: str = ""
) -> TouchpointEvent:
    """Validate one incoming event; raises `InvalidEventError` with field-level errors.

    The server owns `received_at` and `source`: client values for them are replaced.
    """
    if not isinstance(raw, Mapping):
        raise InvalidEventError(
            [{"field": prefix.rstrip(".") or "(body)", "message": "must be a JSON object",
              "type": "object_type"}]
        )
    data = dict(raw)
    data["received_at"] = rules.now
    data["source"] = source
    try:
        return TouchpointEvent.model_validate(data, context={"rules": rules})
    except ValidationError as exc:
        raise InvalidEventError(field_errors(exc, prefix)) from exc
