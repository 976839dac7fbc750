"""ASGI entry point: Django over HTTP, Channels consumers over websockets."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chapi.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chapi.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # No global Origin check: the widget runs on customers' websites, so each consumer
        # checks the Origin against what its key allows (apps.widget.consumers).
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
