"""`/v1/subscriptions`: register, list and remove outbound webhook subscribers.

Designed to be mounted on the recommender service:

    from services.outbound.api import mount_subscriptions
    mount_subscriptions(app, OutboundStore(redis_client, settings.redis_namespace))

Every route needs an API key with the `admin` scope (a subscription receives customer data).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from services.outbound import signing
from services.outbound.messages import EVENT_TYPES
from services.outbound.store import OutboundStore
from services.web.auth import require_scope

router = APIRouter(tags=["subscriptions"], dependencies=[Depends(require_scope("admin"))])
SubscriptionId = Annotated[str, Path(pattern=r"^sub_[0-9a-f]{16}$")]


def get_outbound_store(request: Request) -> OutboundStore:
    return request.app.state.outbound_store


StoreDep = Annotated[OutboundStore, Depends(get_outbound_store)]


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://crm.example.com/hooks/touchpoint", "events": ["decision.created"],
         "description": "CRM task queue"}]})

    url: AnyHttpUrl = Field(description="Where messages are POSTed (http or https).")
    events: list[str] = Field(default_factory=lambda: ["decision.created"],
                              description=f"Event types: {', '.join(EVENT_TYPES)} or *.")
    secret: str | None = Field(None, description="whsec_<base64>; generated when omitted.")
    description: str = Field("", max_length=200)

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e != "*" and e not in EVENT_TYPES]
        if unknown or not value:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}"
                             ", *" if unknown else "at least one event type")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None:
            signing.secret_key(value)
        return value


class SubscriptionOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: float
    disabled: bool


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Shown once: verify our signatures with it.")


@router.post("/v1/subscriptions", status_code=201, response_model=SubscriptionCreated,
             summary="Subscribe a URL to decisions",
             description="Messages are signed as Standard Webhooks describes (webhook-id, "
             "webhook-timestamp, webhook-signature) and delivered at least once; drop "
             "duplicates by webhook-id.")
def create_subscription(body: SubscriptionRequest, store: StoreDep) -> Any:
    secret = body.secret or signing.new_secret()
    subscription = store.create(str(body.url), secret, body.events, body.description,
                                time.time())
    return {**subscription.public(), "secret": secret}


@router.get("/v1/subscriptions", response_model=list[SubscriptionOut],
            summary="List subscriptions (without secrets)")
def list_subscriptions(store: StoreDep) -> Any:
    return [s.public() for s in store.all()]


@router.get("/v1/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(subscription_id: SubscriptionId, store: StoreDep) -> Any:
    return store.get(subscription_id).public()


@router.delete("/v1/subscriptions/{subscription_id}", status_code=204,
               summary="Remove a subscription and its queued messages")
def delete_subscription(subscription_id: SubscriptionId, store: StoreDep) -> Response:
    store.delete(subscription_id)
    return Response(status_code=204)


@router.get("/v1/subscriptions/{subscription_id}/deliveries",
            summary="Delivery log, newest first")
def delivery_log(subscription_id: SubscriptionId, store: StoreDep) -> list[dict[str, Any]]:
    store.get(subscription_id)
    return store.log(subscription_id)


def mount_subscriptions(app: FastAPI, store: OutboundStore) -> None:
    app.state.outbound_store = store
    app.include_router(router)
