"""Widget URLs on every host: its settings (the websocket is in chapi.routing)."""

from __future__ import annotations

from django.urls import path

from apps.widget import views

urlpatterns = [
    path("widget/config", views.config, name="widget_config"),
]
