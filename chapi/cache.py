"""Django's Redis cache, keeping one redis-py client per connection pool.

`django.core.cache.backends.redis` builds a new `redis.Redis` for every cache operation, and
building one fills its table of response callbacks (about 170 entries): on the reply path
that cost about as much as the command's round trip. A redis-py client is safe to share between
threads (each command takes a connection from the pool), so one per pool is kept. It relies on
`RedisCacheClient`'s pool helpers (`_get_connection_pool_index`, `_get_connection_pool`), as
in Django 4.0 to 5.2; tests/chapi/test_cache.py fails if they change.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _Client(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients.setdefault(index, self._client(connection_pool=pool))
        return client


class Cache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _Client
