"""Websocket routes. Each consumer resolves its company itself (by widget key on the public
host) and enters that schema explicitly: django-tenants' middleware does not run for websockets."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from apps.leads.consumers import InboxConsumer
from apps.widget.consumers import WidgetConsumer


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any other path: the handshake is refused (HTTP 403), without an error in the logs."""

    async def connect(self) -> None:
        await self.close()


websocket_urlpatterns: list[Any] = [
    path("ws/widget/", WidgetConsumer.as_asgi()),
    path("ws/dashboard/", InboxConsumer.as_asgi()),
    re_path(r"", NoSuchSocket.as_asgi()),
]
