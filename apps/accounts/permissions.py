"""Role checks for dashboard views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from apps.accounts.models import Membership


def member_required(
    *roles: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Allow signed-in members of this company, and only the given roles if any are named."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            member = Membership.objects.filter(user=request.user).first()
            if member is None or (roles and member.role not in roles):
                raise PermissionDenied
            request.membership = member  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
