"""Team members in the company admin; platform staff in the platform admin."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from apps.accounts.models import Membership, User
from apps.accounts.services import membership_role_change
from apps.audit.services import Actor
from chapi.admin_sites import CompanyModelAdmin, company_admin_site


@admin.register(User)
class StaffUserAdmin(DjangoUserAdmin):
    """Platform staff accounts (public schema)."""

    ordering = ("email",)
    list_display = ("email", "name", "is_staff", "is_superuser", "is_active", "last_login")
    search_fields = ("email", "name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("role",)


@admin.register(Membership, site=company_admin_site)
class MembershipAdmin(CompanyModelAdmin):
    form = MembershipForm
    list_display = ("user", "email", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "user__name")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("user").filter(user__is_active=True)

    @admin.display(description="email")
    def email(self, membership: Membership) -> str:
        return membership.user.email

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people join by invitation, from the Team page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # removal goes through the Team page (keeps the last owner)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        me = Membership.objects.get(user=cast(User, request.user))
        current = Membership.objects.get(pk=obj.pk)
        try:
            membership_role_change(
                membership=current, role=obj.role, by=me, actor=Actor.from_request(request)
            )
        except (ValidationError, PermissionDenied) as exc:
            text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.message_user(request, text, messages.ERROR)
            request._chapi_change_refused = True  # type: ignore[attr-defined]

    def response_change(self, request: HttpRequest, obj: Membership) -> HttpResponse:
        if getattr(request, "_chapi_change_refused", False):
            # The refusal is already on screen; skip Django's "changed successfully".
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)
