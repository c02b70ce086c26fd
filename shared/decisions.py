"""The decision record: what the recommender chose for a customer, on topic `decisions.v1`.

Version 1. Key = customer id. The profile service reads it to keep contact history (frequency
caps, cooldowns); training joins it with outcomes (touchpoint events whose
`context.decision_id` names it, and purchases within the attribution window).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

DECISION_TYPE = "io.touchpoint.decision.v1"


class DecidedAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action_id: str
    rank: int = Field(ge=1)
    channel: str
    touchpoint: str
    score: float
    propensity: float = Field(ge=0, le=1, description="Probability this action was chosen here.")


class DecisionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    decision_id: str
    customer_id: str
    decided_at: AwareDatetime
    model_version: str
    policy: str = Field(description="cold_start, model, fallback, ...")
    holdout: bool
    actions: list[DecidedAction]
    candidates: list[str] = Field(default_factory=list, description="Eligible action ids.")
    features: dict[str, Any] = Field(default_factory=dict, description="Feature snapshot.")
    context: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None

    @property
    def contacted_at(self) -> datetime:
        return self.decided_at
