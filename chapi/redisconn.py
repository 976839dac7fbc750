"""One shared redis-py client for code that needs Redis directly (readiness, rate limits)."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CACHES["default"]["LOCATION"], socket_connect_timeout=2, socket_timeout=2
    )
