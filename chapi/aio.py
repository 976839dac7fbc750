"""Running async code (the model SDK, the channel layer) from sync code such as Celery tasks.

Each thread keeps one event loop for its whole life, so async clients and their connection
pools (cached per loop) are reused across tasks instead of being rebuilt each time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_local = threading.local()


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError("chapi.aio.run() called from a running event loop: await instead")
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop.run_until_complete(coro)
