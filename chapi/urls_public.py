"""URLs of the public host (ROOT_DOMAIN)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language

import chapi.admin_sites  # noqa: F401 - wires the staff login through allauth
from apps.tenants import staff, views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("signup/", views.signup, name="signup"),
    path("login/", views.find_company, name="find_company"),
    path("admin/", admin.site.urls),
    path("staff/usage/", staff.staff_usage, name="staff_usage"),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", set_language, name="set_language"),
    path("v1/", include("apps.api.urls")),
    path("", include("apps.widget.urls")),
    path("", include("apps.webhooks.urls")),
]
