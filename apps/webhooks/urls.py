"""Channel webhooks on the public host: /hooks/<provider>/<webhook id>[/status]."""

from __future__ import annotations

from django.urls import path

from apps.webhooks import views

urlpatterns = [
    path("hooks/<str:provider>/<str:webhook_id>", views.inbound, name="webhook"),
    path("hooks/<str:provider>/<str:webhook_id>/status", views.inbound, name="webhook_status"),
]
