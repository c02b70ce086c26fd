"""API-key authentication for every HTTP API: `Depends(require_scope("profiles:read"))`.

Keys come as `Authorization: Bearer <key>` or `X-API-Key: <key>`. A missing or wrong key
answers 401 with `WWW-Authenticate: Bearer`; a key without the scope answers 403 naming the
scope. Each app calls `install_auth(app, settings, key_store)` once in its factory.

Provider webhooks (`/v1/webhooks/{provider}`) do not use these keys: the provider's signature
is their authentication.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shared.api_keys import ApiKey, KeyStore
from shared.errors import AuthenticationError
from shared.settings import Settings

log = logging.getLogger(__name__)
bearer_scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer tp_...`")
key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: tp_...`")
DEVELOPMENT_PRINCIPAL = ApiKey(id="auth-disabled", name="auth disabled", scopes=("admin",),
                               salt="", hash="", created_at="")


INTERNAL_PRINCIPAL = ApiKey(id="internal", name="in-process call", scopes=("admin",),
                            salt="", hash="", created_at="")


@dataclass
class Authenticator:
    store: KeyStore | None
    disabled: bool = False
    # A random per-process token for the service's own in-process calls (never stored).
    internal_token: str | None = None

    def check(self, presented: str | None, scope: str) -> ApiKey:
        if self.disabled:
            return DEVELOPMENT_PRINCIPAL
        if self.internal_token and presented and hmac.compare_digest(
                presented.encode(), self.internal_token.encode()):
            return INTERNAL_PRINCIPAL
        if self.store is None:
            raise AuthenticationError(
                "this server has no API keys configured: set API_KEYS_FILE (create keys with "
                "`touchpoint keys create`), or AUTH_DISABLED=true for local development only")
        return self.store.authorize(presented, scope)


def install_auth(app: FastAPI, settings: Settings, key_store: KeyStore | None = None) -> None:
    """Chooses the key store once: the one given, else API_KEYS_FILE, else AUTH_DISABLED."""
    if key_store is None and settings.api_keys_file is not None:
        pepper = settings.api_key_pepper.get_secret_value().encode() \
            if settings.api_key_pepper else None
        key_store = KeyStore(settings.api_keys_file, pepper)
        if not key_store.path.exists():
            log.warning("API_KEYS_FILE %s does not exist yet: every key is refused until it "
                        "does (touchpoint keys create)", key_store.path)
        key_store.keys()  # fail fast on an invalid file
    disabled = key_store is None and settings.auth_disabled
    if disabled:
        log.warning("AUTH_DISABLED=true: every API is open without a key (development only)")
    app.state.authenticator = Authenticator(key_store, disabled)


def presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header


def require_scope(scope: str):
    """A dependency that returns the caller's key when it holds `scope` (or admin).

    It runs on the event loop: a plain `def` dependency would cost a worker-thread hop on every
    request, and the check is a dictionary lookup and one HMAC (the key file is re-read only
    when it changes)."""

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        header: Annotated[str | None, Depends(key_header)],
    ) -> ApiKey:
        authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
        if authenticator is None:
            raise AuthenticationError("authentication is not set up on this service")
        key = authenticator.check(presented_key(bearer, header), scope)
        request.state.api_key_id = key.id
        return key

    dependency.__name__ = f"require_{scope.replace(':', '_').replace('*', 'any')}"
    dependency.scope = scope  # type: ignore[attr-defined]  # lets tests list every scoped route
    return dependency


