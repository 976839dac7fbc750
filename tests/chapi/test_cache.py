"""The cache backend (chapi.cache): Django's Redis cache with one client per pool."""

from __future__ import annotations

import threading

from django.core.cache import cache


def test_the_cache_keeps_one_redis_client_per_pool() -> None:
    """Django's Redis cache built a client per operation; one is kept per pool (Django's
    caches, and so their pools, are per thread)."""
    same: list[bool] = []

    def use() -> None:
        key = f"cache-client-test-{threading.get_ident()}"
        cache.set(key, 1, 5)
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        assert cache.get(key) == 1
        cache.delete(key)
        same.append(cache._cache.get_client(write=True) is client)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    use()
    assert same == [True] * 5
