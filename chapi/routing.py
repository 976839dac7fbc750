"""Websocket routes. Each consumer resolves its company itself (by widget key on the public
host) and enters that schema explicitly: django-tenants' middleware does not run for websockets."""

from __future__ import annotations

from typing import Any

from django.urls import path

from apps.widget.consumers import WidgetConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/widget/", WidgetConsumer.as_asgi()),
]
