from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.dashboard.navigation import navigation_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The dashboard's menu for the member's role, and their unread notifications (counted only
    when a page shows the top bar: templates call the function)."""
    user = getattr(request, "user", None)
    member = getattr(user, "membership", None)
    role = getattr(member, "role", None)
    if not role:
        return {"navigation": []}

    def unread() -> int:
        from apps.leads.selectors import notifications_unread_count

        return notifications_unread_count(user_id=user.pk)  # type: ignore[union-attr]

    return {"navigation": navigation_for(role), "unread_notifications": unread}
