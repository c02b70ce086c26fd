"""The recommender service: next-best actions in milliseconds, every decision logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import redis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.recommender.api import routes
from services.recommender.api.deps import RecommenderMetrics, Runtime
from services.recommender.decision_log import DecisionSink, KafkaDecisionLog
from services.recommender.eligibility import ContactPolicy
from services.recommender.model_source import RegistryModelSource
from services.recommender.policies.cold_start import BetaPriorPolicy
from services.recommender.policies.exploration import make_strategy
from services.recommender.profile_reader import ProfileReader
from services.recommender.scoring import ModelScorer, PriorScorer, Scorer
from services.recommender.serving import (
    DecisionPipeline,
    ModelHolder,
    ModelSource,
    PipelineConfig,
)
from services.streaming.publisher import KafkaPublisher, Publisher, prepare_in_background
from services.web.auth import install_auth
from services.web.body_limit import install_body_limit
from services.web.errors import install_error_handlers
from services.web.health import health_router
from services.web.observability import instrument
from services.web.rate_limit import install_rate_limit
from services.web.serve import worker_factory
from services.web.startup import startup_objects_frozen
from services.web.tracing import FASTAPI_TELEMETRY, setup_tracing
from shared.actions import ActionCatalog, load_actions
from shared.api_keys import KeyStore
from shared.settings import Settings
from shared.touchpoints import load_catalog

log = logging.getLogger(__name__)

DESCRIPTION = """
Answers "what should we do next for this customer?" with the best eligible actions, each with
its channel, rendered message (Vietnamese or English), score, exact selection probability and
reasons. Contact policy first (phase, consent, cooldowns, frequency caps, quiet hours, service
before promotion), then the promoted model (or the cold-start prior), a holdout control group,
and exploration so the system keeps learning. Every decision goes to Kafka (`decisions.v1`);
outcomes come back as touchpoint events carrying the `decision_id`, or via `/v1/feedback`.
"""


def validate_levers(levers: dict[str, float], catalog: ActionCatalog) -> None:
    unknown = sorted(set(levers) - set(catalog))
    if unknown:
        raise ValueError(f"RECOMMENDER_ACTION_LEVERS names unknown action(s): {unknown}")
    negative = sorted(a for a, w in levers.items() if w < 0)
    if negative:
        raise ValueError(f"RECOMMENDER_ACTION_LEVERS must not be negative: {negative}")


def install_outbound_delivery(app: FastAPI, settings: Settings):
    """Subscriptions, workflow and audience routes, and signed delivery, when enabled."""
    if not settings.outbound_enabled:
        return None
    from services.outbound.wiring import install_outbound

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    return install_outbound(app, settings, client)


def create_app(
    settings: Settings,
    model_source: ModelSource | None = None,
    decision_log: DecisionSink | None = None,
    feedback_publisher: Publisher | None = None,
    key_store: KeyStore | None = None,
    seed: int | None = None,
) -> FastAPI:
    catalog = load_actions(settings.action_catalog_file)
    validate_levers(settings.recommender_action_levers, catalog)
    registry = CollectorRegistry()
    metrics = RecommenderMetrics(registry)
    strategy = make_strategy(settings.recommender_exploration, settings.recommender_epsilon,
                             settings.recommender_temperature)
    score_scale = max((a.value for a in catalog.values()), default=1.0) or 1.0

    def compile_model(stored: Any, version: str) -> Scorer:
        """A registry entry -> scorer: a trained prior ranks like the cold start does."""
        model = getattr(stored, "model", stored)
        if isinstance(model, BetaPriorPolicy):
            return PriorScorer(model, version)
        return ModelScorer(model, version, catalog, strategy, score_scale)

    def loaded(version: str) -> None:
        metrics.model_loads.inc()
        metrics.serving(version)

    prior = PriorScorer.from_catalog(catalog, settings.recommender_prior_exploration)
    models = ModelHolder(
        prior, compile_model,
        model_source or RegistryModelSource(settings.model_registry_dir),
        on_loaded=loaded,
        on_refused=lambda version, error: metrics.model_refusals.labels(error).inc(),
    )
    metrics.serving(prior.version)
    pipeline = DecisionPipeline(catalog, models, PipelineConfig(
        contact_policy=ContactPolicy(),
        holdout_share=settings.recommender_holdout_share,
        holdout_salt=settings.recommender_holdout_salt,
        levers=dict(settings.recommender_action_levers),
    ))
    reader = ProfileReader.from_url(
        settings.redis_url, settings.redis_namespace,
        settings.recommender_profile_timeout_ms / 1000,
    )
    sink = decision_log or KafkaDecisionLog(
        settings,
        on_failure=lambda reason: metrics.log_failures.labels(reason).inc(),
        on_sent=metrics.logged.inc,
    )
    runtime = Runtime(
        settings=settings,
        pipeline=pipeline,
        models=models,
        reader=reader,
        decision_log=sink,
        feedback_publisher=feedback_publisher or KafkaPublisher(settings),
        touchpoints=load_catalog(settings.touchpoint_catalog_file),
        metrics=metrics,
        registry=registry,
        rng=np.random.default_rng(seed),
    )

    async def follow_registry() -> None:
        """Re-reads the promoted model pointer and the profile generation, forever."""
        while True:
            with contextlib.suppress(Exception):
                await reader.refresh_generation()
            try:
                await asyncio.to_thread(models.refresh)
            except Exception:  # the registry being unreadable must not stop the poller
                log.exception("model registry check failed")
            await asyncio.sleep(settings.recommender_model_poll_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_in_background(runtime.feedback_publisher, [settings.topic_touchpoints])
        poller = asyncio.create_task(follow_registry())
        if outbound is not None:
            await outbound.start()
        try:
            with startup_objects_frozen():
                yield
        finally:
            if outbound is not None:
                await asyncio.to_thread(outbound.stop)
                outbound.redis.close()
            # Every step is bounded: a hung dependency must not keep the process alive.
            poller.cancel()
            await asyncio.wait({poller}, timeout=2)
            await asyncio.to_thread(close_clients)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.close(), timeout=2)

    def close_clients() -> None:
        sink.flush(timeout_s=5)
        sink.close()
        runtime.feedback_publisher.close()
        probe.close()

    app = FastAPI(
        title="Touchpoint recommender", version="1.0.0", description=DESCRIPTION,
        lifespan=lifespan, telemetry=FASTAPI_TELEMETRY,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    install_auth(app, settings, key_store)
    install_rate_limit(app, settings, registry)
    install_body_limit(app, settings.max_body_bytes)
    instrument(app, registry, "recommender")
    outbound = install_outbound_delivery(app, settings)

    # Readiness runs in a worker thread: it gets a small blocking client of its own.
    probe = redis.Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)

    def model_ready() -> None:
        if models.source is not None and models.source.promoted_version() is not None \
                and not models.model_loaded:
            raise RuntimeError(f"promoted model not loaded: {models.last_error or 'pending'}")

    app.include_router(health_router("recommender", {
        "redis": probe.ping,
        "model": model_ready,
    }))
    app.include_router(routes.router, tags=["recommendations"])
    setup_tracing(app, "recommender", settings)
    return app


# The app of one worker process when `RECOMMENDER_WORKERS` is more than 1.
worker_app = worker_factory(create_app)
