"""Static files through WhiteNoise, without putting a sync-only middleware in the way of every
other request.

WhiteNoise's middleware is synchronous only; in Django's async (ASGI) stack one sync-only
middleware makes every request below it hop threads. This wrapper is async-capable and only
hands requests under STATIC_URL to WhiteNoise (in a worker thread).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(get_response=_not_static)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _static(self, request: HttpRequest) -> HttpResponse | None:
        return self.whitenoise(request)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        if request.path_info.startswith(settings.STATIC_URL):
            response = self._static(request)
            if response is not None:
                return response
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(settings.STATIC_URL):
            response = await sync_to_async(self._static, thread_sensitive=False)(request)
            if response is not None:
                return response
        return await self.get_response(request)  # type: ignore[misc]


def _not_static(request: HttpRequest) -> None:  # type: ignore[return]
    return None
