"""The dashboard shell's home page (company hosts)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.accounts.models import Invitation, Membership
from apps.accounts.permissions import member_required
from apps.assistants.services import assistant_profile_get


def root(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard:home" if request.user.is_authenticated else "account_login")


@member_required()
def home(request: HttpRequest) -> HttpResponse:
    profile = assistant_profile_get()
    context = {
        "profile": profile,
        "member_count": Membership.objects.filter(user__is_active=True).count(),
        "open_invitations": sum(
            1 for i in Invitation.objects.filter(accepted_at=None, revoked_at=None) if i.is_open
        ),
    }
    return render(request, "dashboard/home.html", context)
