"""`POST /v1/webhooks/{provider}` and the providers' GET/HEAD checks.

Provider webhooks authenticate with the provider's own signature, not with our API keys: a
marketing tool cannot be told to send our header, and the signature also proves the body is
intact. The order is fixed: read the raw bytes, verify, and only then parse and map. A wrong or
missing signature answers 401 and produces nothing. An authentic item that cannot be mapped goes
to the dead-letter topic with its reason and the request answers 200, so the provider does not
retry it forever. Event ids come from the provider's delivery ids, so retries count once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from services.ingestion.deps import Runtime, get_runtime
from services.ingestion.webhooks.model import (
    Ignored,
    MappingOptions,
    SignatureError,
    UnmappableError,
    Unmapped,
)
from services.ingestion.webhooks.registry import ConfiguredProvider, build_registry
from services.web.auth import bearer_scheme, presented_key
from services.web.errors import error_response
from shared.errors import InvalidEventError
from shared.events import ValidationRules, validate_event
from shared.settings import Settings
from shared.stream import Record, dead_letter_record, event_record

log = logging.getLogger(__name__)
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ProviderName = Annotated[str, Path(max_length=40, pattern=r"^[a-z0-9_\-]+$",
                                   examples=["shopify"])]


class WebhookAccepted(BaseModel):
    accepted: int = Field(description="Events acknowledged by the broker.")
    dead_lettered: int = Field(0, description="Authentic items that could not be mapped.")
    ignored: int = Field(0, description="Authentic items that are not touchpoints by design.")
    event_ids: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list, description="Why items were set aside.")

    model_config = {"json_schema_extra": {"examples": [
        {"accepted": 2, "dead_lettered": 1, "ignored": 0,
         "event_ids": ["sendgrid:rbtnWrG1DVDGGGFHFyun0A", "sendgrid:ZNPT2p0dDK"],
         "problems": ["unsupported SendGrid event 'machine_open'"]}]}}


def request_url(request: Request, settings: Settings) -> str:
    """The URL as the provider called it (what HubSpot and Mandrill sign)."""
    if not settings.webhook_public_base_url:
        return str(request.url)
    query = request.url.query
    return settings.webhook_public_base_url.rstrip("/") + request.url.path + (
        f"?{query}" if query else "")


async def read_limited(request: Request, max_bytes: int) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _lookup(
    registry: dict[str, ConfiguredProvider], name: str
) -> ConfiguredProvider | JSONResponse:
    entry = registry.get(name)
    if entry is None:
        return error_response(404, "unknown_provider",
                              f"no webhook provider {name!r}; known: {', '.join(sorted(registry))}")
    if not entry.configured:
        return error_response(
            503, "provider_not_configured",
            f"webhook provider {name!r} is not configured: set {' and '.join(entry.missing)}; "
            "unsigned data is never accepted", headers={"Retry-After": "300"})
    return entry


def _dead_letter(original: Any, reason: str, source: str, now: datetime,
                 request_id: str | None, errors: list | None = None) -> Record:
    raw = original if isinstance(original, bytes) else orjson.dumps(original, default=str)
    return dead_letter_record(raw, reason, source, now, errors, request_id=request_id)


def build_router(settings: Settings) -> APIRouter:
    registry = build_registry(settings)
    options = MappingOptions(default_country_code=settings.webhook_default_country_code)
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/v1/webhooks/{provider}", response_model=WebhookAccepted,
        summary="Receive a provider's webhook",
        description=(
            "Built-in providers: hubspot, sendgrid, mandrill, mailchimp, meta, zalo, shopify, "
            "haravan, plus the generic ones of the mapping file. Authenticated by the "
            "provider's signature (no API key). 401: signature missing, wrong or stale. "
            "503: the provider's secret is not configured. 200: accepted; items that could not "
            "be mapped went to the dead-letter topic (see `problems`)."),
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": {}, "examples": {
                "shopify orders/paid": {"value": {
                    "id": 820982911946154508, "email": "jon@example.com",
                    "total_price": "403.00", "currency": "USD",
                    "updated_at": "2026-11-20T09:30:00+07:00"}},
                "sendgrid batch": {"value": [
                    {"email": "example@test.com", "timestamp": 1795000000, "event": "open",
                     "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A", "sg_message_id": "14c5d75ce93"}]},
            }},
            "application/x-www-form-urlencoded": {"schema": {}, "examples": {
                "mailchimp subscribe": {"value": "type=subscribe&fired_at=2026-11-20+02%3A30"
                                                 "%3A00&data%5Bemail%5D=api%40mailchimp.com"},
            }}}}},
        responses={401: {"description": "Signature missing, wrong or stale."},
                   404: {"description": "Unknown provider."},
                   413: {"description": "Body too large."},
                   503: {"description": "Provider not configured, or Kafka unavailable."}},
    )
    async def receive(provider: ProviderName, request: Request, runtime: RuntimeDep) -> Any:
        entry = _lookup(registry, provider)
        if isinstance(entry, JSONResponse):
            return entry
        raw = await read_limited(request, runtime.settings.max_body_bytes)
        if raw is None:
            return error_response(413, "payload_too_large",
                                  f"body exceeds {runtime.settings.max_body_bytes} bytes")
        now = datetime.now(UTC)
        plugin, source = entry.provider, f"webhook:{provider}"
        if plugin.api_key_scope:
            request.app.state.authenticator.check(
                presented_key(await bearer_scheme(request), request.headers.get("x-api-key")),
                plugin.api_key_scope)
        try:
            plugin.verify(request.headers, raw, request_url(request, settings), entry.secret, now)
        except SignatureError as exc:
            log.warning("webhook %s refused: %s", provider, exc)
            return error_response(401, "invalid_signature", f"{provider}: {exc}")
        except (ValueError, OverflowError, OSError) as exc:  # e.g. a timestamp out of range
            log.warning("webhook %s refused: unreadable signature fields: %s", provider, exc)
            return error_response(401, "invalid_signature",
                                  f"{provider}: unreadable signature headers")
        request_id = request.scope.get("state", {}).get("request_id")
        try:
            items = plugin.to_events(plugin.parse(request.headers, raw), options)
        except UnmappableError as exc:
            items = [Unmapped(str(exc), raw)]
        except Exception as exc:  # authentic but surprising: keep it, never make them retry
            log.exception("webhook %s: mapping failed", provider)
            items = [Unmapped(f"mapping failed: {type(exc).__name__}: {exc}"[:500], raw)]
        rules = ValidationRules(runtime.catalog, now, runtime.settings.max_future_skew_s)
        events, dead, problems, ignored = [], [], [], 0
        for item in items:
            if isinstance(item, Ignored):
                ignored += 1
            elif isinstance(item, Unmapped):
                problems.append(item.reason)
                dead.append(_dead_letter(item.original, item.reason, source, now, request_id))
            else:
                try:
                    events.append(validate_event(item, rules, source))
                except InvalidEventError as exc:
                    problems.append(str(exc))
                    dead.append(_dead_letter(item, "mapped event is invalid", source, now,
                                             request_id, exc.errors))
        records = [event_record(event, request_id) for event in events]

        def publish() -> None:
            runtime.publisher.publish(runtime.settings.topic_touchpoints, records)
            runtime.publisher.publish(runtime.settings.topic_dead_letter, dead)

        await run_in_threadpool(publish)
        runtime.metrics.events_accepted.inc(len(records))
        if dead:
            runtime.metrics.events_dead_lettered.labels(source).inc(len(dead))
        return WebhookAccepted(accepted=len(records), dead_lettered=len(dead), ignored=ignored,
                               event_ids=[e.event_id for e in events], problems=problems[:20])

    @router.get("/v1/webhooks/{provider}", summary="Provider subscription check",
                description="Meta's `hub.challenge` handshake and Mailchimp's URL validation.",
                response_class=PlainTextResponse,
                responses={403: {"description": "Verify token or secret does not match."},
                           404: {"description": "Unknown provider."},
                           405: {"description": "The provider has no GET handshake."},
                           503: {"description": "Provider not configured."}})
    def handshake(provider: ProviderName, request: Request) -> Any:
        entry = _lookup(registry, provider)
        if isinstance(entry, JSONResponse):
            return entry
        if entry.provider.handshake is None:
            return error_response(405, "method_not_allowed",
                                  f"{provider} webhooks are POST only")
        try:
            answer = entry.provider.handshake(dict(request.query_params), entry.secret)
        except SignatureError as exc:
            return error_response(403, "handshake_refused", f"{provider}: {exc}")
        return PlainTextResponse(answer)

    @router.head("/v1/webhooks/{provider}", include_in_schema=False)
    def exists(provider: ProviderName) -> Any:
        # Mandrill checks the URL with HEAD before it saves a webhook.
        entry = _lookup(registry, provider)
        return entry if isinstance(entry, JSONResponse) else PlainTextResponse("")

    return router
