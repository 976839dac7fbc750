"""Fixed-window rate limits counted in Redis (per API key, per conversation, per IP)."""

from __future__ import annotations

import asyncio
import time
import weakref

import redis.asyncio as aioredis
from django.conf import settings

from chapi.redisconn import redis_client

WINDOW_SECONDS = 60
# One client per event loop, keyed by the loop itself: an id() can be reused by a new loop once
# the old one is gone, and a client of a dead loop must never serve a new one.
_ASYNC_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def _async_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _ASYNC_CLIENTS.get(loop)
    if client is None:
        # A blocking pool waits for a free connection in a burst instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.CACHES["default"]["LOCATION"],
            max_connections=200,
            timeout=2,
            socket_connect_timeout=2,
            socket_timeout=2,
        )
        client = aioredis.Redis(connection_pool=pool)
        _ASYNC_CLIENTS[loop] = client
    return client


def _window() -> tuple[int, int]:
    now = int(time.time())
    start = now - now % WINDOW_SECONDS
    return start, start + WINDOW_SECONDS - now


async def ahit(limits: list[tuple[str, int]]) -> int | None:
    """Count one request against each (key, limit per minute); return the seconds to wait if
    any limit is exceeded, else None."""
    start, remaining = _window()
    pipe = _async_client().pipeline(transaction=False)
    for key, _limit in limits:
        full = f"chapi:rl:{key}:{start}"
        pipe.incr(full)
        pipe.expire(full, WINDOW_SECONDS + 5)
    counts = (await pipe.execute())[::2]
    if any(count > limit for count, (_key, limit) in zip(counts, limits, strict=True)):
        return max(1, remaining)
    return None


def hit(limits: list[tuple[str, int]]) -> int | None:
    """Sync version of `ahit`."""
    start, remaining = _window()
    pipe = redis_client().pipeline(transaction=False)
    for key, _limit in limits:
        full = f"chapi:rl:{key}:{start}"
        pipe.incr(full)
        pipe.expire(full, WINDOW_SECONDS + 5)
    counts = pipe.execute()[::2]
    if any(count > limit for count, (_key, limit) in zip(counts, limits, strict=True)):
        return max(1, remaining)
    return None
