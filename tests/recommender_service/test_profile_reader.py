"""The profile reader against the real Redis: one GET per read, bursts wait for a connection."""

from __future__ import annotations

import asyncio

import msgpack

from services.recommender.profile_reader import ProfileReader
from shared import redis_keys as keys


def test_burst_beyond_the_pool_is_served_and_generation_is_followed(settings, redis_client):
    base = settings.redis_namespace
    redis_client.set(keys.profile_key(base, keys.customer_subject("c-1")),
                     msgpack.packb({"n": {"ev": 1}, "sn": b"12345678"}))
    redis_client.set(keys.profile_key(f"{base}.g2", keys.customer_subject("c-1")),
                     msgpack.packb({"n": {"ev": 2}}))

    async def run() -> tuple[list, dict | None, dict | None]:
        reader = ProfileReader.from_url(settings.redis_url, base, timeout_s=2.0)
        try:
            burst = await asyncio.gather(*(reader.read("c-1") for _ in range(200)),
                                         return_exceptions=True)
            unknown = await reader.read("never-seen")
            redis_client.set(keys.generation_pointer_key(base), "g2")
            await reader.refresh_generation()
            switched = await reader.read("c-1")
        finally:
            await reader.close()
        return burst, unknown, switched

    burst, unknown, switched = asyncio.run(run())
    assert all(state == {"n": {"ev": 1}} for state in burst), [
        b for b in burst if isinstance(b, Exception)][:1]
    assert unknown is None
    assert switched == {"n": {"ev": 2}}
