"""`POST /v1/recommendations`, `POST /v1/feedback`, `GET /v1/actions`, `GET /v1/models/current`."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from services.recommender.api.deps import Runtime, RuntimeDep
from services.recommender.api.models import (
    FeedbackRequest,
    FeedbackResponse,
    RecommendationRequest,
    RecommendationResponse,
)
from services.recommender.learning import (
    OUTCOME_PROPERTY,
    POSITIVE_OUTCOMES,
    feedback_event_id,
    feedback_touchpoint,
)
from services.recommender.serving import Candidate, Decision, DecisionRequest
from services.web.auth import require_scope
from shared.errors import StoreUnavailableError
from shared.events import ValidationRules, validate_event
from shared.stream import event_record

log = logging.getLogger(__name__)
router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key."},
    403: {"description": "The key lacks the scope."},
    422: {"description": "Invalid request; the error names the field."},
}


def _invalid(field: tuple[Any, ...], message: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", *field), "msg": message, "type": kind}])


def _candidates(body: RecommendationRequest, runtime: Runtime) -> tuple[Candidate, ...] | None:
    if body.candidates is None:
        return None
    catalog = runtime.pipeline.catalog
    out, seen = [], set()
    for i, item in enumerate(body.candidates):
        action_id, features = (item, None) if isinstance(item, str) else (item.id, item.features)
        if action_id not in catalog:
            raise _invalid(("candidates", i), f"unknown action {action_id!r} (GET /v1/actions "
                           "lists them)", "unknown_action")
        if action_id in seen:
            raise _invalid(("candidates", i), f"action {action_id!r} listed twice", "duplicate")
        seen.add(action_id)
        out.append(Candidate(action_id, features or None))
    if not out:
        raise _invalid(("candidates",), "give at least one action, or leave it out", "empty")
    return tuple(out)


def _rejection_text(decision: Decision) -> dict[str, str]:
    return {a: f"{r.rule}: {r.detail}" for a, r in decision.rejected.items()}


def response_body(decision: Decision) -> dict[str, Any]:
    return {
        "decision_id": decision.decision_id,
        "customer_id": decision.customer_id,
        "actions": [
            {
                "action_id": c.action.id,
                "rank": c.rank,
                "channel": c.action.channel,
                "touchpoint": c.action.touchpoint,
                "message": c.message,
                "score": c.score,
                "propensity": c.propensity,
                "reasons": {
                    "rules": c.rules,
                    "top_features": [{"feature": n, "contribution": v}
                                     for n, v in c.top_features],
                    "explored": c.explored,
                    "expected_success": c.p,
                },
            }
            for c in decision.actions
        ],
        "model_version": decision.model_version,
        "policy": decision.policy,
        "holdout": decision.holdout,
        "degraded": decision.degraded,
        "degraded_reason": decision.degraded_reason,
        "known_customer": decision.known_customer,
        "rejected": _rejection_text(decision),
    }


@router.post(
    "/v1/recommendations",
    summary="Next-best actions for a customer",
    response_model=RecommendationResponse,
    responses=ERRORS,
    dependencies=[Depends(require_scope("recommendations:read"))],
)
async def recommend(body: RecommendationRequest, request: Request, runtime: RuntimeDep) -> Response:
    """Loads the profile, applies the contact policy, scores the eligible actions with the
    promoted model (or the cold-start prior), explores with exact propensities, and logs the
    decision to `decisions.v1`. A customer never seen before still gets an answer. If the
    profile store is down or slow, the answer is the prior policy on an empty profile (which
    contacts no one whose consent is unknown), flagged `degraded`."""
    started = time.perf_counter()
    candidates = _candidates(body, runtime)
    degraded_reason = None
    state = None
    try:
        state = await runtime.reader.read(body.customer_id)
    except StoreUnavailableError as exc:
        degraded_reason = "profile_unavailable"
        runtime.metrics.fallbacks.labels(degraded_reason).inc()
        runtime.degraded_log.warn(exc)
    decision = runtime.pipeline.decide(
        DecisionRequest(
            customer_id=body.customer_id, context=dict(body.context), candidates=candidates,
            k=body.k, request_id=getattr(request.state, "request_id", None),
        ),
        state, datetime.now(UTC), runtime.rng, degraded_reason,
    )
    runtime.decision_log.submit(decision.record)
    first = decision.actions[0].action.id if decision.actions else "(none)"
    runtime.metrics.decisions.labels(first, decision.model_version, decision.policy).inc()
    runtime.metrics.latency.observe(time.perf_counter() - started)
    return Response(orjson.dumps(response_body(decision)), media_type="application/json")


@router.post(
    "/v1/feedback",
    summary="Report the outcome of a recommendation",
    status_code=202,
    response_model=FeedbackResponse,
    responses={**ERRORS, 503: {"description": "Kafka unavailable; retry after Retry-After."}},
    dependencies=[Depends(require_scope("events:write"))],
)
def feedback(body: FeedbackRequest, runtime: RuntimeDep) -> FeedbackResponse:
    """Records an explicit outcome as a touchpoint event on `touchpoints.v1` carrying the
    decision id, so the profile and the training join see it like any other outcome.
    Sending the same feedback twice counts once (the event id is derived from decision,
    action and outcome unless `feedback_id` is given). 202 means Kafka has it."""
    catalog = runtime.pipeline.catalog
    if body.action_id not in catalog:
        raise _invalid(("action_id",), f"unknown action {body.action_id!r}", "unknown_action")
    channel = catalog[body.action_id].channel
    touchpoint = body.touchpoint or feedback_touchpoint(channel, body.outcome)
    if touchpoint is None:
        raise _invalid(("touchpoint",), f"required: no default touchpoint for outcome "
                       f"{body.outcome!r} on channel {channel!r}", "missing")
    if touchpoint not in runtime.touchpoints:
        raise _invalid(("touchpoint",), f"unknown touchpoint {touchpoint!r}", "unknown_touchpoint")
    now = datetime.now(UTC)
    occurred_at = body.occurred_at or now
    # The same validation as POST /v1/events: time bounds, catalog, value and currency.
    rules = ValidationRules(runtime.touchpoints, now, runtime.settings.max_future_skew_s)
    event = validate_event({
        "event_id": body.feedback_id or feedback_event_id(body.decision_id, body.action_id,
                                                          body.outcome),
        "customer_id": body.customer_id,
        "occurred_at": occurred_at,
        "touchpoint": touchpoint,
        "context": {"decision_id": body.decision_id, "action_id": body.action_id},
        "value": body.value,
        "currency": body.currency,
        "properties": {OUTCOME_PROPERTY: body.outcome},
    }, rules, source="recommender")
    runtime.feedback_publisher.publish(runtime.settings.topic_touchpoints, [event_record(event)])
    runtime.metrics.feedback.labels(body.outcome).inc()
    return FeedbackResponse(
        event_id=event.event_id, touchpoint=touchpoint,
        reward=1.0 if body.outcome in POSITIVE_OUTCOMES else 0.0, occurred_at=occurred_at,
    )


@router.get("/v1/actions", summary="The action catalog in use")
def actions(runtime: RuntimeDep) -> dict[str, Any]:
    catalog = runtime.pipeline.catalog
    return {
        "currency": catalog.currency,
        "actions": [a.model_dump(mode="json") for a in catalog.values()],
    }


@router.get("/v1/models/current", summary="The model in service")
def current_model(runtime: RuntimeDep) -> dict[str, Any]:
    holder = runtime.models
    return {
        "model_version": holder.current.version,
        "policy": holder.current.policy,
        "refused_version": holder.refused_version,
        "last_error": holder.last_error,
    }
