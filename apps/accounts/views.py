"""Signup handoff, invitations and the team page (company hosts)."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.forms import AcceptInvitationForm, InviteForm, RoleForm
from apps.accounts.handoff import handoff_token_redeem
from apps.accounts.models import Invitation, Membership, Role, User
from apps.accounts.permissions import member_required
from apps.accounts.services import (
    invitation_accept,
    invitation_create,
    invitation_get_open,
    invitation_revoke,
    membership_remove,
    membership_role_change,
)
from apps.audit.services import Actor

BACKEND = "django.contrib.auth.backends.ModelBackend"


@require_GET
def signup_handoff(request: HttpRequest) -> HttpResponse:
    """Log in the owner who just signed up on the public site, then send the verification
    email from this host (the link must open here, where the account lives)."""
    user_id = handoff_token_redeem(
        token=request.GET.get("token", ""),
        schema_name=connection.schema_name,  # type: ignore[attr-defined]
    )
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None:
        messages.error(request, _("This sign-in link has expired. Please log in."))
        return redirect("account_login")
    login(request, user, backend=BACKEND)
    address = EmailAddress.objects.filter(user=user, primary=True, verified=False).first()
    if address is not None:
        address.send_confirmation(request, signup=True)
    messages.success(
        request,
        _("Welcome to CHAPI! We sent you an email to confirm your address."),
    )
    return redirect("dashboard:home")


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_get_open(token=token)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    form = AcceptInvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation_accept(
                token=token,
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
                actor=Actor.from_request(request),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            login(request, user, backend=BACKEND)
            messages.success(request, _("Welcome to the team!"))
            return redirect("dashboard:home")
    return render(
        request, "accounts/invitation_accept.html", {"form": form, "invitation": invitation}
    )


@member_required()
@require_http_methods(["GET", "POST"])
def team(request: HttpRequest) -> HttpResponse:
    me: Membership = request.membership  # type: ignore[attr-defined]
    form = InviteForm(request.POST or None)
    if request.method == "POST":
        if not me.can_manage:
            raise PermissionDenied
        if form.is_valid():
            try:
                invitation_create(
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by=request.user,  # type: ignore[arg-type]
                    actor=Actor.from_request(request),
                    link_for=lambda token: request.build_absolute_uri(
                        reverse("invitation_accept", args=[token])
                    ),
                )
            except (ValidationError, PermissionDenied) as exc:
                form.add_error(None, exc.messages if isinstance(exc, ValidationError) else str(exc))
            else:
                messages.success(
                    request,
                    _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]},
                )
                return redirect("team")
    members = Membership.objects.select_related("user").filter(user__is_active=True)
    invitations = [
        i for i in Invitation.objects.filter(accepted_at=None, revoked_at=None) if i.is_open
    ]
    return render(
        request,
        "accounts/team.html",
        {
            "members": members,
            "invitations": invitations,
            "form": form,
            "roles": Role.choices,
            "me": me,
        },
        status=400 if request.method == "POST" else 200,
    )


def _apply(request: HttpRequest, action: str, pk: int) -> HttpResponse:
    me: Membership = request.membership  # type: ignore[attr-defined]
    actor = Actor.from_request(request)
    try:
        if action == "role":
            target = get_object_or_404(Membership, pk=pk, user__is_active=True)
            form = RoleForm(request.POST)
            if not form.is_valid():
                raise ValidationError(_("Unknown role."))
            membership_role_change(
                membership=target, role=form.cleaned_data["role"], by=me, actor=actor
            )
            messages.success(request, _("Role updated."))
        elif action == "remove":
            target = get_object_or_404(Membership, pk=pk, user__is_active=True)
            membership_remove(membership=target, by=me, actor=actor)
            messages.success(
                request, _("%(user)s was removed from the team.") % {"user": target.user}
            )
        else:
            invitation = get_object_or_404(Invitation, pk=pk)
            invitation_revoke(invitation=invitation, by=request.user, actor=actor)  # type: ignore[arg-type]
            messages.success(request, _("Invitation revoked."))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDenied as exc:
        messages.error(request, str(exc) or _("You are not allowed to do that."))
    return HttpResponseRedirect(reverse("team"))


@member_required(Role.OWNER, Role.ADMIN)
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    return _apply(request, "role", pk)


@member_required(Role.OWNER, Role.ADMIN)
@require_POST
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    return _apply(request, "remove", pk)


@member_required(Role.OWNER, Role.ADMIN)
@require_POST
def invitation_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _apply(request, "revoke", pk)
