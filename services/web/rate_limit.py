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

A busy caller costs one Redis call per request only while it is slow: each process takes
tokens ahead ("leases") as many as the caller sent it in the last tenth of a second, at most
a tenth of the burst and never more than the bucket holds, and spends them locally for up to
a second. The limit is never exceeded; a lease left unspent when the caller stops is lost,
so a caller may get up to a tenth of a second's requests per process fewer than its limit.

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
from dataclasses import dataclass, replace
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web.errors import error_response
from shared.settings import Settings

log = logging.getLogger(__name__)

LEASE_WINDOW_S = 0.1  # the request count of one window sizes the next lease
LEASE_LIFETIME_S = 1.0
MAX_LEASE = 64
MAX_TRACKED_CALLERS = 10_000

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc",
                          "/openapi.json", "/docs/oauth2-redirect"})

# KEYS[1] bucket hash. ARGV: rate (tokens/s), burst, cost, now_ms ("" = Redis server time),
# partial ("1" = grant as many tokens up to `cost` as there are, at least one).
# Returns {tokens granted (0 = refused), tokens left (floor), ms until a request would pass}.
# Server time keeps replicas with skewed clocks consistent; tests pass `now_ms` instead.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local partial = ARGV[5] == '1'
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
local granted = 0
local wait_ms = 0
if tokens >= cost then
  granted = cost
elseif partial and tokens >= 1 then
  granted = math.floor(tokens)
end
if granted > 0 then
  tokens = tokens - granted
else
  local needed = partial and 1 or cost
  wait_ms = math.ceil((needed - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {granted, math.floor(tokens), wait_ms}
"""


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    remaining: int
    retry_after_s: int  # whole seconds, at least 1 when refused
    granted: int = 1  # tokens taken (more than one: a lease, see RateLimitMiddleware)

    @classmethod
    def from_reply(cls, reply: list[Any]) -> BucketDecision:
        granted, remaining, wait_ms = (int(x) for x in reply)
        retry = 0 if granted else max(1, math.ceil(wait_ms / 1000))
        return cls(granted > 0, remaining, retry, granted)


@dataclass
class Lease:
    """Tokens one process took ahead for a caller, spent locally until they run out or expire."""

    tokens: int
    remaining: int  # what the bucket held after the lease was taken
    expires: float  # monotonic seconds


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
        self._max_lease = max(1, min(MAX_LEASE, settings.rate_limit_burst // 10))
        self._leases: dict[str, Lease] = {}
        # caller -> (start of the current window, requests in it, requests in the last one)
        self._windows: dict[str, tuple[float, int, int]] = {}

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

    def _lease_size(self, caller: str, now: float) -> int:
        """Requests the caller sent this process in the last full window, within bounds."""
        if self._max_lease == 1:
            return 1
        start, current, previous = self._windows.get(caller, (now, 0, 0))
        if now - start >= 2 * LEASE_WINDOW_S:
            start, current, previous = now, 0, 0
        elif now - start >= LEASE_WINDOW_S:
            start, current, previous = start + LEASE_WINDOW_S, 0, current
        if caller not in self._windows and len(self._windows) >= MAX_TRACKED_CALLERS:
            self._windows.clear()
            self._leases.clear()
        self._windows[caller] = (start, current + 1, previous)
        return max(1, min(self._max_lease, previous))

    async def _take(self, caller: str) -> BucketDecision | None:
        """The decision, or None when Redis could not give one (the request goes through)."""
        now = time.monotonic()
        size = self._lease_size(caller, now)
        lease = self._leases.get(caller)
        if lease is not None and lease.tokens > 0 and now < lease.expires:
            lease.tokens -= 1
            return BucketDecision(True, lease.remaining + lease.tokens, 0)
        decision = await self._redis_take(caller, size)
        if decision is not None and decision.granted > 1:
            lease = self._leases.get(caller)
            extra = decision.granted - 1
            if lease is not None and lease.expires > now:  # another request leased meanwhile
                lease.tokens += extra
                lease.remaining = decision.remaining
            else:
                self._leases[caller] = Lease(extra, decision.remaining, now + LEASE_LIFETIME_S)
            return replace(decision, remaining=decision.remaining + extra)
        return decision

    async def _redis_take(self, caller: str, cost: int) -> BucketDecision | None:
        if time.monotonic() < self._skip_until:
            return None
        s = self.settings
        args = [s.rate_limit_per_s, s.rate_limit_burst, cost, "", "1" if cost > 1 else ""]
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
