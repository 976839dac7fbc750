from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.dashboard.navigation import navigation_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    member = getattr(getattr(request, "user", None), "membership", None)
    role = getattr(member, "role", None)
    return {"navigation": navigation_for(role) if role else []}
