"""A small typed Python client of the recommender API (httpx), sync and async.

    with RecommenderClient("http://localhost:8003", api_key="tp_...") as client:
        answer = client.recommend("c-1001", context={"locale": "vi"}, k=2)
        for action in answer.actions:
            send(action.channel, action.message)
        client.feedback(answer.decision_id, "c-1001", answer.actions[0].action_id, "clicked")

Errors: an answer with status >= 400 raises `RecommenderAPIError` carrying the status, the
error code and the field errors of the response body; transport failures raise httpx's own
`httpx.TransportError` (retry those with backoff: a decision retried is a new decision).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from services.recommender.api.models import (
    CandidateIn,
    FeedbackRequest,
    FeedbackResponse,
    Outcome,
    RecommendationRequest,
    RecommendationResponse,
)

Candidates = Sequence[str | CandidateIn | Mapping[str, Any]]


class RecommenderAPIError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[dict] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    raise RecommenderAPIError(
        response.status_code, str(error.get("code", "http_error")),
        str(error.get("message", response.text[:200])), error.get("fields"),
    )


def _recommend_body(customer_id: str, context: Mapping[str, Any] | None,
                    candidates: Candidates | None, k: int) -> dict[str, Any]:
    request = RecommendationRequest(
        customer_id=customer_id, context=dict(context or {}),
        candidates=None if candidates is None else [
            c if isinstance(c, str | CandidateIn) else CandidateIn.model_validate(c)
            for c in candidates
        ],
        k=k,
    )
    return request.model_dump(mode="json", exclude_none=True)


def _feedback_body(decision_id: str, customer_id: str, action_id: str, outcome: Outcome,
                   **extra: Any) -> dict[str, Any]:
    request = FeedbackRequest(decision_id=decision_id, customer_id=customer_id,
                              action_id=action_id, outcome=outcome, **extra)
    return request.model_dump(mode="json", exclude_none=True)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class RecommenderClient:
    """Blocking client; reuse one instance (it keeps connections alive)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 2.0,
                 transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key),
                                  timeout=timeout_s, transport=transport)

    def recommend(self, customer_id: str, context: Mapping[str, Any] | None = None,
                  candidates: Candidates | None = None, k: int = 1) -> RecommendationResponse:
        response = self._http.post("/v1/recommendations",
                                   json=_recommend_body(customer_id, context, candidates, k))
        _raise_for(response)
        return RecommendationResponse.model_validate_json(response.content)

    def feedback(self, decision_id: str, customer_id: str, action_id: str, outcome: Outcome,
                 *, value: float | None = None, currency: str | None = None,
                 occurred_at: datetime | None = None) -> FeedbackResponse:
        body = _feedback_body(decision_id, customer_id, action_id, outcome, value=value,
                              currency=currency, occurred_at=occurred_at)
        response = self._http.post("/v1/feedback", json=body)
        _raise_for(response)
        return FeedbackResponse.model_validate_json(response.content)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RecommenderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRecommenderClient:
    """The same calls for asyncio code."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 2.0,
                 transport: httpx.AsyncBaseTransport | None = None):
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key),
                                       timeout=timeout_s, transport=transport)

    async def recommend(self, customer_id: str, context: Mapping[str, Any] | None = None,
                        candidates: Candidates | None = None, k: int = 1
                        ) -> RecommendationResponse:
        response = await self._http.post(
            "/v1/recommendations", json=_recommend_body(customer_id, context, candidates, k))
        _raise_for(response)
        return RecommendationResponse.model_validate_json(response.content)

    async def feedback(self, decision_id: str, customer_id: str, action_id: str,
                       outcome: Outcome, *, value: float | None = None,
                       currency: str | None = None, occurred_at: datetime | None = None
                       ) -> FeedbackResponse:
        body = _feedback_body(decision_id, customer_id, action_id, outcome, value=value,
                              currency=currency, occurred_at=occurred_at)
        response = await self._http.post("/v1/feedback", json=body)
        _raise_for(response)
        return FeedbackResponse.model_validate_json(response.content)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRecommenderClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
