"""Request and response shapes of the recommender API (the public contract, with examples)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+\-]+$")
]
ActionId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ContextValue = Annotated[str, StringConstraints(max_length=500)] | bool | int | float | None
MAX_CONTEXT_KEYS = 50
MAX_CANDIDATES = 100


class CandidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ActionId = Field(description="Catalog action id.")
    features: dict[str, float] = Field(
        default_factory=dict,
        description="Numeric action features for this request (override the catalog's).",
    )

    @field_validator("features")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for name, number in value.items():
            if not math.isfinite(number):
                raise ValueError(f"feature {name!r} is not a finite number")
        return value


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "c-1001",
                    "context": {"locale": "vi", "channel": "web", "first_name": "Lan",
                                "product_name": "áo dài lụa"},
                    "k": 2,
                },
                {
                    "customer_id": "c-2002",
                    "context": {"locale": "en", "phase": "purchase"},
                    "candidates": [
                        "abandoned_cart_email",
                        {"id": "free_shipping_messenger", "features": {"incentive": 0.1}},
                        "no_action",
                    ],
                    "k": 1,
                },
            ]
        },
    )

    customer_id: Identifier = Field(description="CRM customer id; unknown customers are fine.")
    context: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], ContextValue] = (
        Field(
            default_factory=dict,
            description="Scalars describing the moment: locale (vi/en), timezone, phase, "
            "journey_step, page, campaign, message placeholders (first_name, product_name...).",
        )
    )
    candidates: list[ActionId | CandidateIn] | None = Field(
        None, max_length=MAX_CANDIDATES,
        description="Restrict the choice to these actions (ids or {id, features}); "
        "default: the whole catalog.",
    )
    k: int = Field(1, ge=1, le=10, description="How many ranked actions to return.")

    @field_validator("context")
    @classmethod
    def _bounded_context(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_CONTEXT_KEYS:
            raise ValueError(f"at most {MAX_CONTEXT_KEYS} keys, got {len(value)}")
        for name, item in value.items():
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{name}: not a finite number")
        return value


class FeatureContribution(BaseModel):
    feature: str
    contribution: float


class Reasons(BaseModel):
    rules: list[str] = Field(description="Contact-policy rules the action satisfied.")
    top_features: list[FeatureContribution] = Field(
        description="Context features that moved this action's score most (model policy)."
    )
    explored: bool = Field(description="Chosen by exploration rather than as the best score.")
    expected_success: float = Field(description="Predicted probability of a positive outcome.")


class RecommendedAction(BaseModel):
    action_id: str
    rank: int
    channel: str
    touchpoint: str | None
    message: str = Field(description="Rendered in the context's locale (vi default, or en).")
    score: float = Field(description="lever * p * value - cost, in the catalog currency.")
    propensity: float = Field(description="Exact probability this action was chosen here.")
    reasons: Reasons


class RecommendationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision_id": "6f1c2a7e0b9d4c35a1e8f2d4b6c8a0e1",
                    "customer_id": "c-1001",
                    "actions": [
                        {
                            "action_id": "flash_sale_zalo",
                            "rank": 1,
                            "channel": "zalo",
                            "touchpoint": "zalo.outreach",
                            "message": "Lan ơi, flash sale hôm nay ...",
                            "score": 4200.0,
                            "propensity": 0.91,
                            "reasons": {
                                "rules": ["phase: pre_purchase", "consent: zalo opt_in"],
                                "top_features": [{"feature": "engagement_30d",
                                                  "contribution": 0.31}],
                                "explored": False,
                                "expected_success": 0.028,
                            },
                        }
                    ],
                    "model_version": "v3",
                    "policy": "model",
                    "holdout": False,
                    "degraded": False,
                    "degraded_reason": None,
                    "known_customer": True,
                    "rejected": {"abandoned_cart_email": "phase: not offered in phase "
                                 "pre_purchase"},
                }
            ]
        }
    )

    decision_id: str
    customer_id: str
    actions: list[RecommendedAction] = Field(description="Empty for the holdout group.")
    model_version: str
    policy: Literal["model", "cold_start", "fallback", "holdout"]
    holdout: bool = Field(description="Control group: no action, for measuring lift.")
    degraded: bool = Field(description="The profile could not be read; a safe fallback answered.")
    degraded_reason: str | None = None
    known_customer: bool
    rejected: dict[str, str] = Field(
        description="Actions ruled out by the contact policy: action id -> 'rule: detail'."
    )


Outcome = Literal["opened", "clicked", "replied", "converted", "dismissed", "unsubscribed"]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"decision_id": "6f1c2a7e0b9d4c35a1e8f2d4b6c8a0e1", "customer_id": "c-1001",
                 "action_id": "flash_sale_zalo", "outcome": "converted", "value": 350000,
                 "currency": "VND"},
                {"decision_id": "6f1c2a7e0b9d4c35a1e8f2d4b6c8a0e1", "customer_id": "c-1001",
                 "action_id": "flash_sale_zalo", "outcome": "clicked"},
            ]
        },
    )

    decision_id: Identifier
    customer_id: Identifier
    action_id: ActionId
    outcome: Outcome = Field(
        description="opened, clicked, replied, converted = positive; dismissed, unsubscribed = "
        "negative."
    )
    occurred_at: AwareDatetime | None = Field(None, description="Default: now.")
    value: float | None = Field(None, ge=0, le=1e12, description="Order value of a conversion.")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    touchpoint: Annotated[str, StringConstraints(min_length=3, max_length=80)] | None = Field(
        None, description="Catalog touchpoint to record; default derived from outcome + channel."
    )
    feedback_id: Identifier | None = Field(
        None, description="Idempotency key; default derived from decision, action and outcome."
    )


class FeedbackResponse(BaseModel):
    event_id: str
    touchpoint: str
    reward: float
    occurred_at: datetime
