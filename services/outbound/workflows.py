"""Next-best actions inside marketing workflows, and for whole audiences.

`POST /v1/workflows/recommendations` takes a tool's own contact payload (a HubSpot workflow's
"Send a webhook" body, a Zapier/Make/n8n step, any JSON object with an e-mail) and answers
flat fields a workflow can branch on: `action_id`, `channel`, `message`, `decision_id`,
`holdout`. `POST /v1/audiences/recommendations` decides for a list of customers, or for every
customer in a segment of the stored profiles (`services.recommender.segments`), and streams one
JSON line per customer, then a summary line.

Both call the service's own `POST /v1/recommendations` in-process (same API key, same
validation, same decision log), so they depend on its public contract only. Every decision is
logged to `decisions.v1`, so subscribers of `/v1/subscriptions` receive them too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from services.recommender.segments import AudienceSegment
from services.web.auth import require_scope
from services.web.errors import error_response
from shared.contact_identity import normalize_email, normalize_phone
from shared.errors import StoreUnavailableError

router = APIRouter(tags=["workflows"],
                   dependencies=[Depends(require_scope("recommendations:read"))])
DEFAULT_CONTEXT = ("first_name", "firstname", "locale", "timezone", "phase", "journey_step",
                   "campaign", "lifecyclestage", "product_name")
_CONTEXT_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_AUDIENCE = 10_000
SCAN_STEP = 200  # profiles read per SCAN step of a segment audience


def _properties(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level scalars, plus HubSpot's `properties: {name: {value}}` or `{name: value}`."""
    flat = {k: v for k, v in payload.items() if isinstance(v, str | int | float | bool)}
    nested = payload.get("properties")
    if isinstance(nested, Mapping):
        for name, item in nested.items():
            value = item.get("value") if isinstance(item, Mapping) else item
            if isinstance(value, str | int | float | bool):
                flat.setdefault(name, value)
    return flat


def contact_request(payload: Any, context_fields: list[str], k: int,
                    default_country_code: str = "84") -> tuple[dict[str, Any] | None, str]:
    """A `/v1/recommendations` body from a tool's contact payload (pure).

    Identity: `customer_id` when given, else the e-mail (lower-cased), else the phone
    (E.164-ish), the same ids the e-mail and commerce webhooks use.
    """
    if not isinstance(payload, Mapping):
        return None, "the body must be a JSON object"
    fields = _properties(payload)
    customer = str(fields["customer_id"]) if fields.get("customer_id") else None
    customer = customer or normalize_email(fields.get("email")) \
        or normalize_phone(fields.get("phone") or fields.get("mobilephone"), default_country_code)
    if not customer:
        return None, "no customer_id, email or phone in the body"
    context = {}
    for name in context_fields:
        value = fields.get(name)
        if value is not None and _CONTEXT_KEY.match(name):
            target = "first_name" if name == "firstname" else name
            context[target] = value[:500] if isinstance(value, str) else value
    return {"customer_id": customer, "context": context, "k": k}, ""


def flatten(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The first action's fields at the top level, for workflow branches."""
    actions = decision.get("actions") or []
    first = actions[0] if actions else {}
    return {
        "decision_id": decision.get("decision_id"),
        "customer_id": decision.get("customer_id"),
        "action_id": first.get("action_id", "none"),
        "channel": first.get("channel"),
        "touchpoint": first.get("touchpoint"),
        "message": first.get("message"),
        "score": first.get("score"),
        "holdout": decision.get("holdout", False),
        "policy": decision.get("policy"),
        "actions": actions,
    }


def _forward_headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items()
            if k.lower() in ("authorization", "x-api-key", "x-request-id")}


async def _recommend(request: Request, client: httpx.AsyncClient,
                     body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/recommendations", json=body,
                             headers=_forward_headers(request))


def _client(request: Request) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app),
                             base_url="http://in-process")


@router.post(
    "/v1/workflows/recommendations", summary="Next-best action from a workflow step",
    description="Send the tool's contact payload as it is. Answers `action_id` (\"none\" when "
    "nothing is due or the customer is in the holdout), `channel`, `message`, `decision_id` "
    "and `holdout` at the top level, so a workflow can branch on them.",
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": {
        "hubspot": {"value": {"vid": 1246965, "properties": {
            "email": {"value": "lan@example.vn"}, "firstname": {"value": "Lan"},
            "lifecyclestage": {"value": "customer"}}}},
        "flat": {"value": {"email": "lan@example.vn", "first_name": "Lan", "locale": "vi"}},
    }}}}},
)
async def workflow_recommendation(
    request: Request,
    k: Annotated[int, Query(ge=1, le=10)] = 1,
    context: Annotated[str | None, Query(description="Comma-separated payload fields to pass "
                                                     "as context (default: first name, "
                                                     "locale, phase, campaign...).")] = None,
) -> Any:
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return error_response(400, "malformed_json", f"body is not valid JSON: {exc}",
                              [{"field": "(body)", "message": str(exc), "type": "json_invalid"}])
    fields = context.split(",") if context else list(DEFAULT_CONTEXT)
    body, problem = contact_request(payload, fields, k)
    if body is None:
        return error_response(422, "invalid_request", problem,
                              [{"field": "customer_id", "message": problem, "type": "missing"}])
    async with _client(request) as client:
        reply = await _recommend(request, client, body)
    if reply.status_code != 200:
        return JSONResponse(reply.json(), status_code=reply.status_code,
                            headers={k: v for k, v in reply.headers.items()
                                     if k.lower() in ("retry-after", "www-authenticate")})
    return flatten(reply.json())


class AudienceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"customer_ids": ["c-1001", "c-1002", "lan@example.vn"], "context": {"locale": "vi"},
         "k": 1},
        {"segment": {"phase": ["post_purchase"], "not_purchased_within_days": 60,
                     "opted_in": ["email"], "bad_experience_open": False},
         "limit": 5000, "context": {"campaign": "winback-q4"}}]})

    customer_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        None, min_length=1, max_length=MAX_AUDIENCE,
        description="The customers to decide for, in this order. Give this or `segment`.")
    segment: AudienceSegment | None = Field(
        None, description="Decide for every identified customer whose stored profile meets "
        "these conditions. Give this or `customer_ids`.")
    cursor: int = Field(0, ge=0, le=2**64 - 1,
                        description="Segment only: where to resume a scan, from the "
                        "`next_cursor` of an earlier summary line.")
    limit: int = Field(MAX_AUDIENCE, ge=1, le=MAX_AUDIENCE, description="Segment only: stop "
                       f"after the scan step that reaches this many decisions (a step reads "
                       f"up to {SCAN_STEP} profiles), so that resuming misses no one.")
    context: dict[str, str | int | float | bool] = Field(default_factory=dict)
    k: int = Field(1, ge=1, le=10)


def _decision_line(reply: httpx.Response, customer_id: str) -> tuple[dict[str, Any], bool]:
    """The flat decision, or the failure; True when it is a failure."""
    if reply.status_code == 200:
        return flatten(reply.json()), False
    return {"customer_id": customer_id, "status": reply.status_code,
            "error": reply.json().get("error", {}).get("message")}, True


@router.post(
    "/v1/audiences/recommendations", summary="Decide for a list or a segment (streamed)",
    description="Streams `application/x-ndjson`. With `customer_ids`: one line per customer "
    "in request order (`{\"index\", \"progress\": \"i/n\", ...flat decision}` or "
    "`{\"index\", \"status\", \"error\"}`), then `{\"done\": n, \"errors\": e}`. With "
    "`segment`: the service scans the stored profiles and streams one line per customer in "
    "the segment (`progress` counts matched and scanned profiles), then `{\"done\", "
    "\"errors\", \"scanned\", \"next_cursor\"}`; a `next_cursor` that is not null means "
    "the scan stopped at `limit` or on a Redis failure (a line with `status` 503 says so; "
    "its `next_cursor` may then be 0) and resumes with `cursor`. A scan lists a "
    "customer at least once, and once in all but rare cases (a profile that moves while "
    "Redis resizes its tables). Every decision is logged, so webhook subscribers get them.",
)
async def audience_recommendations(body: AudienceRequest, request: Request) -> Any:
    if (body.customer_ids is None) == (body.segment is None):
        field = "segment" if body.segment is not None else "customer_ids"
        message = "give either customer_ids or segment, not both" if body.segment else \
            "give customer_ids or segment"
        return error_response(422, "invalid_request", message,
                              [{"field": field, "message": message, "type": "value_error"}])
    if body.segment is not None:
        return StreamingResponse(_segment_lines(body, body.segment, request),
                                 media_type="application/x-ndjson")
    customer_ids = body.customer_ids or []
    total = len(customer_ids)

    async def lines() -> AsyncIterator[bytes]:
        errors = 0
        async with _client(request) as client:
            for index, customer_id in enumerate(customer_ids):
                reply = await _recommend(request, client, {
                    "customer_id": customer_id, "context": body.context, "k": body.k})
                decision, failed = _decision_line(reply, customer_id)
                errors += failed
                yield orjson.dumps({"index": index, "progress": f"{index + 1}/{total}",
                                    **decision}) + b"\n"
        yield orjson.dumps({"done": total, "errors": errors}) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def _segment_lines(body: AudienceRequest, segment: AudienceSegment,
                         request: Request) -> AsyncIterator[bytes]:
    reader = request.app.state.runtime.reader
    now = datetime.now(UTC)
    cursor, scanned, matched, errors = body.cursor, 0, 0, 0
    failed = False
    async with _client(request) as client:
        while True:
            try:
                next_cursor, customers = await reader.scan_customers(cursor, SCAN_STEP)
            except StoreUnavailableError as exc:
                yield orjson.dumps({"status": 503, "error": str(exc)}) + b"\n"
                failed = True
                break
            scanned += len(customers)
            for customer_id, state in customers:
                if not segment.matches(state, now):
                    continue
                matched += 1
                reply = await _recommend(request, client, {
                    "customer_id": customer_id, "context": body.context, "k": body.k})
                decision, failed = _decision_line(reply, customer_id)
                errors += failed
                yield orjson.dumps({"index": matched - 1, "progress":
                                    f"{matched} matched, {scanned} scanned", **decision}) + b"\n"
            cursor = next_cursor
            if cursor == 0 or matched >= body.limit:
                break
    # After a failure the step that failed is to be read again, even the first (cursor 0).
    yield orjson.dumps({"done": matched, "errors": errors, "scanned": scanned,
                        "next_cursor": cursor if failed else cursor or None}) + b"\n"
