"""The profile API: read a customer's profile, timeline and export; erase a person.

Routes are plain `def`: the Redis client is synchronous, so FastAPI runs them in its thread
pool and the event loop never blocks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from services.profiles.deps import Runtime, Store
from services.profiles.fold import epoch_ms
from services.profiles.view import build_profile, public_timeline
from services.web.auth import require_scope
from shared import redis_keys as keys
from shared.errors import NotFoundError

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])

CustomerId = Annotated[str, Path(
    min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+\-]+$",
    description="The customer id (CRM id) events carried as `customer_id`.",
    examples=["c-1001"],
)]

EXAMPLE_PROFILE: dict[str, Any] = {
    "customer_id": "c-1001",
    "anonymous_id": None,
    "anonymous_ids": ["anon-4f1c2a"],
    "first_seen": "2027-01-20T02:30:00Z",
    "last_seen": "2027-02-09T09:00:00Z",
    "as_of": "2027-02-10T09:00:00Z",
    "journey": {"phase": "post_purchase", "step": "after_sales",
                "since": "2027-01-20T09:06:00Z", "cycle": 0, "loyal": False,
                "changes": [{"phase": "pre_purchase", "step": "discovery",
                             "at": "2027-01-20T02:30:00Z"},
                            {"phase": "post_purchase", "step": "purchase",
                             "at": "2027-01-20T09:06:00Z"}]},
    "activity": {"events": 12, "events_decayed": {"7d": 1.3, "30d": 6.1, "90d": 10.4},
                 "touchpoints": {"web.purchase": {"total": 1, "7d": 0, "30d": 1, "90d": 1}},
                 "windows_complete": True,
                 "channels": {"web": {"total": 8, "30d": 4.2,
                                      "last_at": "2027-02-09T09:00:00Z"}},
                 "phases": {"post_purchase": {"total": 3, "30d": 1.8}},
                 "signals": {"purchase": {"total": 1, "30d": 0.5}}},
    "value": {"orders": 1, "refunds": 0, "revenue": {"VND": 450000}, "currency": "VND",
              "average_order_value": 450000.0, "first_purchase_at": "2027-01-20T09:06:00Z",
              "last_purchase_at": "2027-01-20T09:06:00Z"},
    "satisfaction": {"ratings": 1, "average_rating": 2.0,
                     "last_rating": {"value": 2, "at": "2027-01-22T11:00:00Z"},
                     "nps": {"responses": 0, "average": None, "promoters": 0, "passives": 0,
                             "detractors": 0, "last": None},
                     "sentiment": {"positive": 0, "neutral": 0, "negative": 1,
                                   "last": {"value": "negative", "at": "2027-01-22T11:00:00Z"}},
                     "open_bad_experiences": [{"touchpoint": "delivery.failed",
                                               "at": "2027-01-21T09:00:00Z"}],
                     "last_bad_experience_at": "2027-01-21T09:00:00Z",
                     "last_resolution_at": None},
    "consent": {"email": {"status": "opt_in", "at": "2027-01-20T02:31:00Z"}},
    "timezone": "Asia/Ho_Chi_Minh",
    "outreach": {"contacts": [{"at": "2027-02-01T03:00:00Z", "channel": "email",
                               "action_id": "service_recovery_call", "decision_id": "d-77"}],
                 "by_channel": {"email": {"count": 1, "last_at": "2027-02-01T03:00:00Z"}},
                 "by_action": {"service_recovery_call": {"count": 1,
                                                         "last_at": "2027-02-01T03:00:00Z"}},
                 "messages": {}},
    "decision_outcomes": [],
    "timeline_length": 12,
    "features": {"phase": "post_purchase", "orders": 1, "open_bad_experiences": 1,
                 "consent.email": "opt_in", "days_since_last_purchase": 21.0},
}

NOT_FOUND = {"description": "No profile for this customer id.", "content": {"application/json": {
    "example": {"error": {"code": "not_found", "message": "no profile for customer 'c-404'"}}}}}


def _not_found(customer_id: str) -> NotFoundError:
    return NotFoundError(
        f"no profile for customer {customer_id!r}: no event with this customer_id was "
        "processed yet, or the profile was erased")


def _read(store, customer_id: str):
    stored = store.read(keys.customer_subject(customer_id))
    if stored is None:
        raise _not_found(customer_id)
    return stored


@router.get(
    "/{customer_id}", summary="A customer's profile with its features",
    responses={200: {"content": {"application/json": {"example": EXAMPLE_PROFILE}}},
               404: NOT_FOUND},
    dependencies=[Depends(require_scope("profiles:read"))],
)
def get_profile(customer_id: CustomerId, store: Store, runtime: Runtime) -> dict[str, Any]:
    """Identity, journey, activity, value (RFM), satisfaction, consent, our own outreach and
    the flat `features` dict the recommender uses. Field by field: docs/profile.md."""
    stored = _read(store, customer_id)
    return build_profile(keys.customer_subject(customer_id), stored, runtime.catalog,
                         runtime.now())


@router.get(
    "/{customer_id}/timeline", summary="The latest touchpoints, newest first",
    responses={200: {"content": {"application/json": {"example": {
        "customer_id": "c-1001", "count": 1, "items": [{
            "at": "2027-01-20T09:06:00Z", "touchpoint": "web.purchase", "channel": "web",
            "phase": "purchase", "journey_step": "purchase",
            "context": {"campaign": "tet-2027-flash-sale"}, "value": 450000,
            "currency": "VND"}]}}}}, 404: NOT_FOUND},
    dependencies=[Depends(require_scope("profiles:read"))],
)
def get_timeline(
    customer_id: CustomerId, store: Store, runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many items.")] = 100,
) -> dict[str, Any]:
    items = public_timeline(_read(store, customer_id), runtime.catalog)[:limit]
    return {"customer_id": customer_id, "count": len(items), "items": items}


@router.get(
    "/{customer_id}/export", summary="Everything stored about the person",
    responses={404: NOT_FOUND},
    dependencies=[Depends(require_scope("profiles:read"))],
)
def export_profile(customer_id: CustomerId, store: Store, runtime: Runtime) -> dict[str, Any]:
    """The public profile, the full timeline and every stored Redis value about the person
    (customer keys and merged anonymous ids), for data-subject access requests."""
    stored = _read(store, customer_id)
    now = runtime.now()
    return {
        "customer_id": customer_id,
        "exported_at": now.isoformat(),
        "profile": build_profile(keys.customer_subject(customer_id), stored, runtime.catalog,
                                 now),
        "timeline": public_timeline(stored, runtime.catalog),
        "stored": store.export_raw(customer_id),
    }


def erase_analytics_state(runtime: Runtime, subjects: list[str]) -> None:
    try:
        from services.profiles.analytics.store import erase_customers
    except ImportError:
        return
    erase_customers(runtime.redis, runtime.settings.redis_namespace, subjects)


@router.delete(
    "/{customer_id}", summary="Erase a person",
    responses={200: {"content": {"application/json": {"example": {
        "customer_id": "c-1001", "erased_at": "2027-02-10T09:00:00+00:00", "existed": True,
        "anonymous_ids": ["anon-4f1c2a"], "keys_deleted": 3}}}}},
    dependencies=[Depends(require_scope("profiles:erase"))],
)
def erase_profile(customer_id: CustomerId, store: Store, runtime: Runtime) -> dict[str, Any]:
    """Deletes every key of the customer and of the anonymous ids merged into it, and records
    the erasure: events that happened before now and arrive later (late, redelivered or
    replayed) are refused, so the profile does not come back. Erasing an unknown id still
    records it (events may be on their way). Idempotent."""
    now = runtime.now()
    report = store.erase(customer_id, epoch_ms(now))
    erase_analytics_state(runtime, [customer_id, *report.aliases])
    return {"customer_id": customer_id, "erased_at": now.isoformat(), "existed": report.existed,
            "anonymous_ids": report.aliases, "keys_deleted": report.keys_deleted}
