"""Per-API-key rate limits: a token bucket in Redis, as ASGI middleware every app installs.

    install_rate_limit(app, settings)      # one line in an app factory

Each caller owns one bucket per service of `rate_limit_burst` tokens that refills at
`rate_limit_per_s` tokens a second; a request takes one token. An empty bucket answers 429
with `Retry-After` (whole seconds until a token is back). The bucket is one Redis hash updated
by one Lua script, so every replica of a service shares it and concurrent requests cannot
overdraw it.

Who is "the caller": the SHA-256 of the presented API key (`Authorization: Bearer ...` or
`X-API-Key`), never the key itself; without a key, the client address. The limiter runs before
authentication, so a wrong key is limited too (and then refused with 401 by the route).

When Redis is unreachable or slow the limiter lets requests through (fails open) and does not
ask Redis again for `rate_limit_redis_backoff_s`: an outage of the limiter must not become an
outage of ingestion. Health, metrics and documentation paths are never limited.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
import weakref
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web.errors import error_response
from shared.settings import Settings

log = logging.getLogger(__name__)

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc",
                          "/openapi.json", "/docs/oauth2-redirect"})

# KEYS[1] bucket hash. ARGV: rate (tokens/s), burst, cost, now_ms ("" = Redis server time).
# Returns {allowed 0/1, tokens left (floor), ms until `cost` tokens are available}.
# Server time keeps replicas with skewed clocks consistent; tests pass `now_ms` instead.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
local allowed = 0
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait_ms = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, math.floor(tokens), wait_ms}
"""


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    remaining: int
    retry_after_s: int  # whole seconds, at least 1 when refused

    @classmethod
    def from_reply(cls, reply: list[Any]) -> BucketDecision:
        allowed, remaining, wait_ms = (int(x) for x in reply)
        retry = 0 if allowed else max(1, math.ceil(wait_ms / 1000))
        return cls(bool(allowed), remaining, retry)


def bucket_key(namespace: str, caller: str, service: str = "") -> str:
    return f"{namespace}:ratelimit:{service}:{{{caller}}}" if service else \
        f"{namespace}:ratelimit:{{{caller}}}"


def service_name(app: FastAPI) -> str:
    """`ingestion` for an app titled "Touchpoint ingestion": each service has its own buckets."""
    return re.sub(r"[^a-z0-9]+", "-", app.title.lower().removeprefix("touchpoint")).strip("-")


def caller_of(scope: Scope) -> str:
    """`k:<sha256 of the key>[:16 bytes]` for a presented key, else `ip:<client address>`."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credential = value.partition(b" ")
            if scheme.lower() == b"bearer" and credential.strip():
                return "k:" + hashlib.sha256(credential.strip()).hexdigest()[:32]
        elif name == b"x-api-key" and value.strip():
            return "k:" + hashlib.sha256(value.strip()).hexdigest()[:32]
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


class TokenBucket:
    """The synchronous adapter (tests, CLIs): one call per request."""

    def __init__(self, client: redis.Redis, namespace: str, rate_per_s: float, burst: int):
        self.script = client.register_script(TOKEN_BUCKET_LUA)
        self.namespace, self.rate_per_s, self.burst = namespace, rate_per_s, burst

    def take(self, caller: str, cost: int = 1, now_ms: int | None = None) -> BucketDecision:
        reply = self.script(keys=[bucket_key(self.namespace, caller)],
                            args=[self.rate_per_s, self.burst, cost,
                                  "" if now_ms is None else now_ms])
        return BucketDecision.from_reply(reply)


class RateLimitMiddleware:
    """Takes a token per request from the caller's bucket; 429 + Retry-After when empty."""

    def __init__(self, app: ASGIApp, settings: Settings, refused: Counter,
                 bypassed: Counter, service: str = "") -> None:
        self.app = app
        self.settings = settings
        self.service = service
        self.refused, self.bypassed = refused, bypassed
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = \
            weakref.WeakKeyDictionary()
        self._sha: str | None = None
        self._skip_until = 0.0

    def _client(self) -> aioredis.Redis:
        # One client per event loop: an asyncio connection pool is bound to the loop it
        # first ran on, and test clients start a loop of their own.
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            timeout = self.settings.rate_limit_redis_timeout_s
            client = aioredis.Redis.from_url(
                self.settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout,
                max_connections=64)
            self._clients[loop] = client
        return client

    async def _take(self, caller: str) -> BucketDecision | None:
        """The decision, or None when Redis could not give one (the request goes through)."""
        if time.monotonic() < self._skip_until:
            return None
        s = self.settings
        args = [s.rate_limit_per_s, s.rate_limit_burst, 1, ""]
        key = bucket_key(s.redis_namespace, caller, self.service)
        client = self._client()
        try:
            if self._sha is None:
                self._sha = await client.script_load(TOKEN_BUCKET_LUA)
            try:
                reply = await client.evalsha(self._sha, 1, key, *args)
            except redis.exceptions.NoScriptError:  # Redis restarted and lost its scripts
                self._sha = await client.script_load(TOKEN_BUCKET_LUA)
                reply = await client.evalsha(self._sha, 1, key, *args)
            return BucketDecision.from_reply(reply)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                OSError) as exc:
            self._skip_until = time.monotonic() + s.rate_limit_redis_backoff_s
            self.bypassed.inc()
            log.warning("rate limiter bypassed for %.0f s: Redis unavailable (%s)",
                        s.rate_limit_redis_backoff_s, exc.__class__.__name__)
            return None

    async def _close(self) -> None:
        for client in list(self._clients.values()):
            try:
                await client.aclose()
            except Exception:  # closing is best effort at shutdown
                log.debug("closing a rate-limit Redis client failed", exc_info=True)
        self._clients.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async def send_after_close(message: Message) -> None:
                if message["type"] == "lifespan.shutdown.complete":
                    await self._close()
                await send(message)

            await self.app(scope, receive, send_after_close)
            return
        if scope["type"] != "http" or scope.get("path", "") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        decision = await self._take(caller_of(scope))
        if decision is not None and not decision.allowed:
            self.refused.inc()
            retry = str(decision.retry_after_s)
            response = error_response(
                429, "rate_limited",
                f"rate limit of {self.settings.rate_limit_per_s:g} requests/s "
                f"(burst {self.settings.rate_limit_burst}) reached; retry after {retry} s",
                headers={"Retry-After": retry, "X-RateLimit-Remaining": "0"})
            await response(scope, receive, send)
            return
        if decision is None:
            await self.app(scope, receive, send)
            return

        remaining = str(decision.remaining).encode()

        async def send_with_remaining(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"x-ratelimit-remaining", remaining)]
            await send(message)

        await self.app(scope, receive, send_with_remaining)


RATE_LIMITED_RESPONSE = {
    "description": "Rate limit of the API key reached; retry after `Retry-After` seconds.",
    "headers": {"Retry-After": {"schema": {"type": "integer"},
                                "description": "Seconds until a request is allowed again."}},
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["error"], "properties": {"error": {"type": "object"}}}}},
}


def _document_429(app: FastAPI) -> None:
    """Adds the 429 answer to every limited operation of the app's OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if path in EXEMPT_PATHS:
                continue
            for operation in operations.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["responses"].setdefault("429", RATE_LIMITED_RESPONSE)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_rate_limit(app: FastAPI, settings: Settings,
                       registry: CollectorRegistry | None = None) -> None:
    """Limits every route of `app` per API key, as `settings` say (no-op when disabled)."""
    if not settings.rate_limit_enabled:
        return
    registry = registry or CollectorRegistry()
    refused = Counter("touchpoint_rate_limited_total", "Requests refused with 429.",
                      registry=registry)
    bypassed = Counter("touchpoint_rate_limit_bypassed_total",
                       "Times the limiter let requests through because Redis failed.",
                       registry=registry)
    app.add_middleware(RateLimitMiddleware, settings=settings, refused=refused, bypassed=bypassed,
                       service=service_name(app))
    _document_429(app)
