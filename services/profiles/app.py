"""The profile service: the profile API, and the consumers keeping profiles and analytics in
Redis (processes of their own by default, threads of the API process when asked)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.profiles import api
from services.profiles.consumer import build_consumer
from services.profiles.consumer_processes import ConsumerProcesses
from services.profiles.deps import ProfileRuntime
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import ProfileStore
from services.streaming.publisher import KafkaPublisher
from services.web.auth import install_auth
from services.web.body_limit import install_body_limit
from services.web.errors import install_error_handlers
from services.web.health import health_router
from services.web.observability import instrument
from services.web.rate_limit import install_rate_limit
from services.web.startup import startup_objects_frozen
from services.web.tracing import FASTAPI_TELEMETRY, setup_tracing
from shared.errors import StoreUnavailableError
from shared.settings import Settings
from shared.touchpoints import load_catalog

log = logging.getLogger(__name__)

DESCRIPTION = """
What the business knows about each customer, in real time: identity (with merged anonymous
visitor ids), journey phase and step, activity per touchpoint, channel and phase, value (RFM),
satisfaction and open bad experiences, consent per channel, our own outreach, a bounded
timeline, and the flat `features` the recommender uses. Kept by a Kafka consumer group on
`touchpoints.v1` and `decisions.v1`; every event counts exactly once.
"""


def build_store(settings: Settings, client: redis.Redis) -> ProfileStore:
    return ProfileStore(client, settings.redis_namespace,
                        timeline_capacity=settings.profile_timeline_length,
                        dedupe_capacity=settings.profile_dedupe_window)


def _start_analytics(settings: Settings, client: redis.Redis,
                     stop: threading.Event) -> threading.Thread | None:
    try:
        from services.profiles.analytics.consumer import start
    except ImportError:
        return None
    return start(settings, client, stop)


def create_app(
    settings: Settings, redis_client: redis.Redis | None = None, run_consumers: bool = True,
) -> FastAPI:
    registry = CollectorRegistry()
    in_processes = run_consumers and settings.profile_consumer_processes > 0
    runtime = ProfileRuntime(settings=settings,
                             catalog=load_catalog(settings.touchpoint_catalog_file))
    # Consumer processes report their own metrics; otherwise the API process shows them.
    consumer_processes = ConsumerProcesses(settings, registry) if in_processes else None
    consumer_metrics = None if in_processes else ProfileMetrics(registry)
    dead_letters = KafkaPublisher(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = redis_client or redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2,
            health_check_interval=30)
        runtime.redis = client
        app.state.redis = client
        runtime.store = build_store(settings, client)
        runtime.store.refresh_generation()
        stop = threading.Event()
        if consumer_processes is not None:
            app.state.child_metrics_dir = str(consumer_processes.metrics_dir)
            consumer_processes.start()
        elif run_consumers:
            def consume() -> None:
                # Built in the thread: the API starts even while Kafka is not reachable yet.
                consumer = build_consumer(settings, build_store(settings, client),
                                          runtime.catalog, dead_letters, consumer_metrics, stop)
                consumer.run(stop)

            thread = threading.Thread(target=consume, name="profile-consumer", daemon=True)
            thread.start()
            runtime.threads["profiles"] = thread
            analytics = _start_analytics(settings, client, stop)
            if analytics is not None:
                runtime.threads["analytics"] = analytics
        try:
            with startup_objects_frozen():
                yield
        finally:
            stop.set()
            if consumer_processes is not None:
                consumer_processes.stop()
            for thread in runtime.threads.values():
                thread.join(timeout=15)
            dead_letters.close()
            if redis_client is None:
                client.close()

    app = FastAPI(title="Touchpoint profiles", version="1.0.0", description=DESCRIPTION,
                  lifespan=lifespan, telemetry=FASTAPI_TELEMETRY)
    app.state.runtime = runtime
    app.state.consumer_processes = consumer_processes
    app.state.settings = settings
    install_error_handlers(app)
    install_auth(app, settings)
    install_rate_limit(app, settings, registry)
    install_body_limit(app, settings.max_body_bytes)
    instrument(app, registry, "profiles")
    setup_tracing(app, "profiles", settings)

    def redis_ready() -> None:
        if runtime.redis is None:
            raise StoreUnavailableError("not started")
        try:
            runtime.redis.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreUnavailableError(f"Redis unreachable: {exc}") from exc

    def consumers_running() -> None:
        for name, thread in runtime.threads.items():
            if not thread.is_alive():
                raise RuntimeError(f"the {name} consumer stopped (see the logs)")
        stopped = consumer_processes.not_running() if consumer_processes else []
        if stopped:
            raise RuntimeError("consumer processes not running: " + ", ".join(stopped))

    app.include_router(health_router("profiles", {
        "redis": redis_ready, "kafka": dead_letters.check, "consumers": consumers_running}))
    app.include_router(api.router)
    try:
        from services.profiles.analytics.api import router as analytics_router
    except ImportError:
        analytics_router = None
    if analytics_router is not None:
        app.include_router(analytics_router)
    return app
