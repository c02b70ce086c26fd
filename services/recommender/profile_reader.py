"""Reading a customer's profile from Redis for a decision: one GET, bounded by a timeout.

Key names come from `shared.redis_keys` (the profile service owns the layout). The active
generation is re-read in the background (`refresh_generation`), never on the request path,
so a decision costs exactly one round trip. A Redis that is down or slower than the timeout
becomes `StoreUnavailableError`, which the pipeline turns into a degraded answer.
"""

from __future__ import annotations

from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared import redis_keys as keys
from shared.errors import StoreUnavailableError

# The dedupe ring and the timeline stored next to the state are of no use to a decision.
STORAGE_FIELDS = ("si", "sn", "tl")


def decode_profile(packed: bytes) -> dict[str, Any]:
    """The stored profile state (msgpack) without its dedupe ring and timeline."""
    state = msgpack.unpackb(
        packed, raw=False, unicode_errors="surrogateescape", strict_map_key=False
    )
    if not isinstance(state, dict):
        raise ValueError("stored profile is not a map")
    for name in STORAGE_FIELDS:
        state.pop(name, None)
    return state


class ProfileReader:
    """Profiles of one base namespace, read with the asyncio Redis client."""

    def __init__(self, client: aioredis.Redis, base_namespace: str, timeout_s: float):
        self.client = client
        self.base = base_namespace
        self.timeout_s = timeout_s
        self._namespace = base_namespace

    @classmethod
    def from_url(cls, url: str, base_namespace: str, timeout_s: float) -> ProfileReader:
        # A burst beyond the pool waits (up to the timeout) for a free connection instead of
        # failing at once, as the plain pool would.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=0,
        )
        return cls(aioredis.Redis(connection_pool=pool), base_namespace, timeout_s)

    @property
    def namespace(self) -> str:
        return self._namespace

    async def _bounded(self, call: Any) -> Any:
        # The client's socket timeouts bound connecting and every read, so no extra task
        # (asyncio.wait_for) is needed per request.
        try:
            return await call
        except (TimeoutError, RedisError, OSError) as exc:
            raise StoreUnavailableError(f"Redis unavailable: {type(exc).__name__}") from exc

    async def refresh_generation(self) -> str:
        raw = await self._bounded(self.client.get(keys.generation_pointer_key(self.base)))
        self._namespace = keys.generation_namespace(self.base, raw.decode() if raw else None)
        return self._namespace

    async def read(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's state, or None for a customer never seen."""
        key = keys.profile_key(self._namespace, keys.customer_subject(customer_id))
        packed = await self._bounded(self.client.get(key))
        if packed is None:
            return None
        try:
            return decode_profile(packed)
        except (ValueError, msgpack.UnpackException) as exc:
            raise StoreUnavailableError(f"unreadable profile for {customer_id}: {exc}") from exc

    async def scan_customers(
        self, cursor: int, count: int
    ) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
        """One SCAN step over the active generation's profiles: the next cursor (0 when the
        scan is complete) and the identified customers found, with their states. Anonymous
        visitors are left out; a profile erased between SCAN and MGET is skipped."""
        namespace = self._namespace
        cursor, found = await self._bounded(
            self.client.scan(cursor, match=keys.profile_pattern(namespace), count=count))
        subjects = [keys.subject_of_profile_key(namespace, key.decode()) for key in found]
        subjects = [subject for subject in subjects if not keys.is_anonymous(subject)]
        if not subjects:
            return int(cursor), []
        values = await self._bounded(
            self.client.mget([keys.profile_key(namespace, s) for s in subjects]))
        customers = []
        for subject, packed in zip(subjects, values, strict=True):
            if packed is None:
                continue
            try:
                customers.append((keys.subject_id(subject), decode_profile(packed)))
            except (ValueError, msgpack.UnpackException) as exc:
                raise StoreUnavailableError(f"unreadable profile of {subject}: {exc}") from exc
        return int(cursor), customers

    async def ping(self) -> None:
        await self._bounded(self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()
