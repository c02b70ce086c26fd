"""Everything outbound, mounted on a service in one call (the recommender):

    outbound = install_outbound(app, settings, redis_client)   # in create_app, after install_auth
    ...
    async with lifespan:  await outbound.start()  ...  finally: outbound.stop()

Mounts `/v1/subscriptions`, `/v1/workflows/recommendations` and
`/v1/audiences/recommendations`; `start()` runs the dispatcher (decisions -> subscribers) and
the profile-change triggers, which ask this same app for decisions in-process with a random
per-process token, so the decision goes through the normal pipeline and decision log.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass, field

import httpx
import redis
from fastapi import FastAPI

from services.outbound.api import mount_subscriptions
from services.outbound.dispatcher import start_dispatcher
from services.outbound.store import OutboundStore
from services.outbound.triggers import start_triggers
from services.outbound.workflows import router as workflow_router
from shared.settings import Settings
from shared.touchpoints import load_catalog

DECIDE_TIMEOUT_S = 30.0


@dataclass
class OutboundService:
    app: FastAPI
    settings: Settings
    redis: redis.Redis
    token: str
    triggers: bool = True
    transport: httpx.BaseTransport | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    async def _decide(self, customer_id: str, context: dict) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                     base_url="http://in-process") as client:
            reply = await client.post(
                "/v1/recommendations", json={"customer_id": customer_id, "context": context},
                headers={"Authorization": f"Bearer {self.token}"})
            reply.raise_for_status()

    async def start(self, from_beginning: bool = False) -> None:
        """Call from the app's lifespan (it captures the running event loop)."""
        loop = asyncio.get_running_loop()

        def decide(customer_id: str, context: dict) -> None:
            future = asyncio.run_coroutine_threadsafe(self._decide(customer_id, context), loop)
            future.result(timeout=DECIDE_TIMEOUT_S)

        self.threads = start_dispatcher(self.settings, self.redis, self.stop_event,
                                        transport=self.transport, from_beginning=from_beginning)
        if self.triggers:
            catalog = load_catalog(self.settings.touchpoint_catalog_file)
            self.threads.append(start_triggers(self.settings, self.redis, catalog, decide,
                                               self.stop_event, from_beginning=from_beginning))

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=timeout_s)


def install_outbound(app: FastAPI, settings: Settings, redis_client: redis.Redis,
                     triggers: bool = True,
                     transport: httpx.BaseTransport | None = None) -> OutboundService:
    authenticator = getattr(app.state, "authenticator", None)
    if authenticator is None:
        raise RuntimeError("call install_auth(app, ...) before install_outbound")
    token = secrets.token_urlsafe(32)
    authenticator.internal_token = token
    mount_subscriptions(app, OutboundStore(redis_client, settings.redis_namespace))
    app.include_router(workflow_router)
    return OutboundService(app, settings, redis_client, token, triggers, transport)
