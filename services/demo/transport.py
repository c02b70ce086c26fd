"""The demo's HTTP side: one async client per run, polite retries, and the counts it reports.

A 429 or 503 answer is retried after its `Retry-After` (the services rate-limit each API key and
answer 503 while Kafka is unavailable); a dropped connection is retried with a short backoff.
Every retry resends the same event ids, so nothing is counted twice downstream.

Errors (all `DemoError`):

    DemoError
     ├── ServiceDownError     a service does not answer its health check
     └── RequestFailedError   an answer other than 2xx after the retries
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from shared.errors import TouchpointError

RETRIED_STATUSES = frozenset({429, 502, 503, 504})


class DemoError(TouchpointError):
    """The demo cannot go on; the message says what to do."""


class ServiceDownError(DemoError):
    pass


class RequestFailedError(DemoError):
    def __init__(self, method: str, url: str, status: int, body: str):
        super().__init__(f"{method} {url} answered {status}: {body[:300]}")
        self.status = status


@dataclass(frozen=True)
class Endpoints:
    ingestion: str
    profile: str
    recommender: str
    api_key: str | None

    @property
    def dashboard(self) -> str:
        return f"{self.profile.rstrip('/')}/dashboard"


class Http:
    """Wraps `httpx.AsyncClient`: JSON in and out, retries, and a request counter."""

    def __init__(self, endpoints: Endpoints, concurrency: int = 16, attempts: int = 8,
                 timeout_s: float = 30.0, transport: httpx.AsyncBaseTransport | None = None):
        self._auth = {"Authorization": f"Bearer {endpoints.api_key}"} if endpoints.api_key else {}
        limits = httpx.Limits(max_connections=concurrency * 2,
                              max_keepalive_connections=concurrency * 2)
        self.client = httpx.AsyncClient(timeout=timeout_s, limits=limits,
                                        transport=transport)
        self.endpoints = endpoints
        self.attempts = attempts
        self.requests = 0
        self.retries = 0

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check_up(self, name: str, base_url: str) -> None:
        url = f"{base_url.rstrip('/')}/healthz"
        try:
            reply = await self.client.get(url, timeout=3.0)
        except httpx.TransportError as exc:
            raise ServiceDownError(
                f"the {name} service does not answer at {base_url} ({type(exc).__name__}); "
                "start it with `make run` in another terminal") from exc
        if reply.status_code != 200:
            raise ServiceDownError(f"the {name} service at {base_url} is not healthy "
                                   f"({reply.status_code}); check `make run`'s output")

    async def send(self, method: str, url: str, *, json: Any = None, content: bytes | None = None,
                   headers: dict[str, str] | None = None, auth: bool = True) -> httpx.Response:
        # Provider deliveries are authenticated by their signature, never by our key.
        request_headers = {**(self._auth if auth else {}), **(headers or {})}
        delay = 0.2
        for attempt in range(1, self.attempts + 1):
            self.requests += 1
            try:
                reply = await self.client.request(method, url, json=json, content=content,
                                                  headers=request_headers)
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise DemoError(f"{method} {url} failed: {exc!r}") from exc
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if reply.status_code in RETRIED_STATUSES and attempt < self.attempts:
                self.retries += 1
                retry_after = reply.headers.get("retry-after", "")
                wait = float(retry_after) if retry_after.isdigit() else delay
                await asyncio.sleep(min(max(wait, 0.05), 10.0))
                delay = min(delay * 2, 5.0)
                continue
            if reply.status_code >= 400:
                raise RequestFailedError(method, url, reply.status_code, reply.text)
            return reply
        raise DemoError(f"{method} {url}: no answer after {self.attempts} attempts")

    async def text(self, url: str) -> str:
        return (await self.send("GET", url)).text
