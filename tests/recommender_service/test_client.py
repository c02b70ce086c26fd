"""The typed Python client against the real service (uvicorn, Redis, broker)."""

from __future__ import annotations

import asyncio

import pytest

from services.recommender.api.models import RecommendationResponse
from services.recommender.app import create_app
from services.recommender.client import (
    AsyncRecommenderClient,
    RecommenderAPIError,
    RecommenderClient,
)
from tests.recommender_service.conftest import ALL_OPT_IN, profile_state, zone_at_local_hour
from tests.servers import serving


@pytest.fixture
def base_url(service_settings):
    with serving(create_app(service_settings, seed=5)) as url:
        yield url


def test_sync_client_recommends_and_sends_feedback(base_url, put_profile):
    put_profile("c-client", profile_state(consent=ALL_OPT_IN))
    with RecommenderClient(base_url) as client:
        answer = client.recommend(
            "c-client", context={"locale": "en", "timezone": zone_at_local_hour(12)},
            candidates=["flash_sale_zalo", {"id": "flash_sale_email", "features": {"urgency": 1}}],
            k=2,
        )
        assert isinstance(answer, RecommendationResponse)
        assert {a.action_id for a in answer.actions} == {"flash_sale_zalo", "flash_sale_email"}
        first = answer.actions[0]
        receipt = client.feedback(answer.decision_id, "c-client", first.action_id, "clicked")
        assert receipt.reward == 1.0 and receipt.touchpoint in {"zalo.click", "email.click"}


def test_errors_carry_status_code_and_fields(base_url):
    with RecommenderClient(base_url) as client, pytest.raises(RecommenderAPIError) as caught:
        client.recommend("c-1", candidates=["no_such_action"])
    error = caught.value
    assert error.status == 422 and error.code == "invalid_request"
    assert error.fields[0]["field"] == "candidates.0"


def test_client_side_validation_refuses_bad_k_before_sending(base_url):
    with RecommenderClient(base_url) as client, pytest.raises(ValueError, match="k"):
        client.recommend("c-1", k=0)


def test_async_client(base_url):
    async def run() -> list[RecommendationResponse]:
        async with AsyncRecommenderClient(base_url) as client:
            return list(await asyncio.gather(*(client.recommend(f"c-async-{i}")
                                               for i in range(5))))

    answers = asyncio.run(run())
    assert len({a.decision_id for a in answers}) == 5
    assert all(a.actions for a in answers)
