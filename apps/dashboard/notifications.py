"""Dashboard: a member's in-dashboard notifications (a lead became qualified, a visitor waits
for a person). The top bar shows the unread count on every page; inbox pages keep it live
(static/dashboard/inbox.js re-fetches `?fragment=badge` on a `notification` or
`queue.changed` event). Each member sees only their own notifications."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.permissions import member_required
from apps.leads import selectors
from apps.leads.notify import notification_open, notifications_read_all


@never_cache
@require_GET
@member_required()
def notifications_home(request: HttpRequest) -> HttpResponse:
    user_id = request.user.pk
    if request.GET.get("fragment") == "badge":
        return render(
            request,
            "dashboard/_notification_badge.html",
            {"unread_notifications": selectors.notifications_unread_count(user_id=user_id)},
        )
    notifications = selectors.notifications_for(user_id=user_id)
    context = {
        "notifications": notifications,
        "unread": sum(1 for item in notifications if item.read_at is None),
        "fragment": request.GET.get("fragment") == "list",
    }
    template = "dashboard/_notification_list.html" if context["fragment"] else None
    return render(request, template or "dashboard/notifications.html", context)


@never_cache
@require_GET
@member_required()
def notification_open_view(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Open a notification: mark it read and go where it points (a page of this host)."""
    notification = notification_open(user=request.user, pk=pk)  # type: ignore[arg-type]
    if (
        notification is not None
        and notification.url.startswith("/")
        and url_has_allowed_host_and_scheme(notification.url, allowed_hosts=None)
    ):
        return redirect(notification.url)
    return redirect("dashboard:notifications")


@require_POST
@member_required()
def notifications_read_all_view(request: HttpRequest) -> HttpResponseBase:
    notifications_read_all(user=request.user)  # type: ignore[arg-type]
    return redirect("dashboard:notifications")
