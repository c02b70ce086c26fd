"""What every profile route needs, built once in the app factory and read per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import redis
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from services.profiles.store import ProfileStore
from shared.errors import UnavailableError
from shared.settings import Settings
from shared.touchpoints import TouchpointCatalog


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ProfileRuntime:
    settings: Settings
    catalog: TouchpointCatalog
    now: Callable[[], datetime] = utc_now
    redis: redis.Redis | None = None
    store: ProfileStore | None = None
    threads: dict[str, threading.Thread] = field(default_factory=dict)
    generation_checked_at: float = 0.0


# How stale the API's view of the active generation may be after a replay switched over.
GENERATION_CHECK_S = 5.0


async def get_runtime(request: Request) -> ProfileRuntime:
    # async: a plain `def` dependency would cost a worker-thread hop on every request.
    return request.app.state.runtime


async def get_store(runtime: Annotated[ProfileRuntime, Depends(get_runtime)]) -> ProfileStore:
    if runtime.store is None:
        raise UnavailableError("the profile store is starting up")
    if time.monotonic() - runtime.generation_checked_at > GENERATION_CHECK_S:
        await run_in_threadpool(runtime.store.refresh_generation)  # Redis: off the event loop
        runtime.generation_checked_at = time.monotonic()
    return runtime.store


Runtime = Annotated[ProfileRuntime, Depends(get_runtime)]
Store = Annotated[ProfileStore, Depends(get_store)]
