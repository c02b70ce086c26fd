"""A small app serving the analytics router over a real Redis, as the profile service does."""

from __future__ import annotations

import redis
from fastapi import FastAPI

from services.profiles.analytics import api
from services.web.auth import install_auth
from services.web.errors import install_error_handlers
from services.web.health import health_router
from shared.api_keys import KeyStore
from shared.settings import Settings


def analytics_app(
    settings: Settings, client: redis.Redis | None = None, key_store: KeyStore | None = None
) -> FastAPI:
    """Open without keys unless a key store is given."""
    app = FastAPI(title="analytics under test")
    install_error_handlers(app)
    install_auth(app, settings.model_copy(update={"auth_disabled": key_store is None}), key_store)
    app.state.settings = settings
    if client is not None:
        app.state.redis = client
    app.include_router(health_router("analytics", {}))
    app.include_router(api.router)
    return app
