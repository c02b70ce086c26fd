"""Fixtures of the recommender service tests: settings, profiles in Redis, trained models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import redis

from services.recommender.logs import BanditLog, LoggedDecision
from services.recommender.model_store import save_model
from services.recommender.policies import PersonalizedPolicy
from services.recommender.registry import ModelRegistry
from shared import redis_keys as keys
from shared.actions import load_actions
from shared.settings import Settings

CATALOG = load_actions()
ALL_OPT_IN = {c: "opt_in" for c in ("email", "zalo", "messenger", "sms", "ads", "push")}


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def zone_at_local_hour(hour: int, now: datetime | None = None) -> str:
    """An `Etc/GMT` zone whose local hour is `hour` at `now` (POSIX signs are inverted)."""
    now = now or datetime.now(UTC)
    offset = (hour - now.hour + 12) % 24 - 12  # hours east of UTC, -12..11
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def consent_state(consent: dict[str, str], at: datetime) -> dict[str, Any]:
    ms = epoch_ms(at)
    return {"lw": {f"cs:{channel}": [ms, "t", status] for channel, status in consent.items()}}


def profile_state(
    *,
    consent: dict[str, str] | None = None,
    orders: int = 0,
    contacts: list[tuple[datetime, str, str]] = (),
    bad_experiences: list[tuple[datetime, str]] = (),
    resolved_at: datetime | None = None,
    timezone: str | None = None,
    seen_at: datetime | None = None,
    engagement: float = 0.0,
) -> dict[str, Any]:
    """A stored profile in the profile service's packed shape (see docs/redis-keys.md)."""
    seen = seen_at or datetime(2026, 1, 1, tzinfo=UTC)
    state: dict[str, Any] = {
        "n": {"ev": 5, "orders": orders},
        "mx": {"ls": epoch_ms(seen)},
        "mn": {"fs": epoch_ms(seen)},
        "lw": consent_state(consent or {}, seen)["lw"],
        "dr": epoch_ms(seen),
        "dc": {"30": {"s:engagement": engagement}},
        "oc": [[epoch_ms(at), channel, action, f"d-{i}"]
               for i, (at, channel, action) in enumerate(contacts)],
        "bx": [[epoch_ms(at), touchpoint] for at, touchpoint in bad_experiences],
    }
    if resolved_at is not None:
        state["mx"]["lr"] = epoch_ms(resolved_at)
    if timezone is not None:
        state["lw"]["tz"] = [epoch_ms(seen), "t", timezone]
    return state


@pytest.fixture
def service_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={
        "auth_disabled": True,
        "rate_limit_enabled": False,
        "recommender_holdout_share": 0.0,
        # A busy test machine must not turn answers into degraded ones; the degraded tests
        # set their own short timeout.
        "recommender_profile_timeout_ms": 2000,
        "recommender_model_poll_s": 0.2,
        "model_registry_dir": tmp_path / "models",
    })


@pytest.fixture
def put_profile(
    redis_client: redis.Redis, service_settings: Settings
) -> Callable[[str, dict[str, Any]], None]:
    def put(customer_id: str, state: dict[str, Any]) -> None:
        key = keys.profile_key(service_settings.redis_namespace,
                               keys.customer_subject(customer_id))
        redis_client.set(key, msgpack.packb({**state, "sn": b""}))

    return put


def synthetic_log(
    favoured: str, other: str, n: int = 1200, seed: int = 0
) -> BanditLog:
    """A uniformly logged campaign over two no-consent actions and no_action, where
    `favoured` wins for engaged customers and `other` for the rest."""
    rng = np.random.default_rng(seed)
    arms = [favoured, other, "no_action"]
    rows = []
    for _ in range(n):
        engagement = float(rng.exponential(2.0))
        arm = arms[int(rng.integers(3))]
        rate = {favoured: 0.05 + 0.25 * (engagement > 2), other: 0.25 * (engagement <= 2),
                "no_action": 0.02}[arm]
        rows.append(LoggedDecision(
            {"engagement_30d": engagement, "phase": "pre_purchase"}, arm, 1 / 3,
            float(rng.random() < rate), tuple(arms),
        ))
    return BanditLog.from_decisions(rows, CATALOG.feature_table())


@pytest.fixture(scope="session")
def trained_policies() -> dict[str, PersonalizedPolicy]:
    """Two fitted policies that rank the two no-consent pre-purchase actions differently."""
    return {
        "a": PersonalizedPolicy(families=("linear",)).fit(
            synthetic_log("live_chat_invite", "no_action", seed=1)),
        "b": PersonalizedPolicy(families=("linear",)).fit(
            synthetic_log("no_action", "live_chat_invite", seed=2)),
    }


@pytest.fixture
def registry(service_settings: Settings) -> ModelRegistry:
    return ModelRegistry(service_settings.model_registry_dir)


@pytest.fixture
def publish_model(registry: ModelRegistry, tmp_path: Path) -> Iterator[Callable[..., str]]:
    counter = iter(range(1000))

    def publish(model: PersonalizedPolicy, promote: bool = True) -> str:
        directory = tmp_path / f"model-{next(counter)}"
        save_model(model, directory, created_at="2026-11-01T00:00:00Z")
        version = registry.register(directory)
        if promote:
            registry.promote(version, force=True)
        return version

    yield publish
