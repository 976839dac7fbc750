"""The two Django admins: the platform admin (public host, staff) and each company's admin
(its own host, for its owners and admins)."""

from __future__ import annotations

from typing import Any

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import MANAGER_ROLES, Membership

# Staff log in through allauth (with their second factor), not the admin's own form.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
admin.site.site_header = _("CHAPI platform")
admin.site.site_title = _("CHAPI platform")


def is_company_manager(request: HttpRequest) -> bool:
    """Whether the signed-in user is an owner or admin of the request's company (memoized on
    the request: the admin asks once per model and permission)."""
    cached = getattr(request, "_chapi_is_manager", None)
    if cached is None:
        user = request.user
        cached = bool(
            user.is_authenticated
            and user.is_active
            and Membership.objects.filter(user=user, role__in=MANAGER_ROLES).exists()
        )
        request._chapi_is_manager = cached  # type: ignore[attr-defined]
    return cached


class CompanyAdminSite(admin.AdminSite):
    site_header = _("Company administration")
    site_title = _("CHAPI")
    index_title = _("Settings")

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        company = getattr(request, "tenant", None)
        if company is not None:
            context["site_header"] = company.name
        return context

    def has_permission(self, request: HttpRequest) -> bool:
        return is_company_manager(request)

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.user.is_authenticated:
            if not self.has_permission(request):
                raise PermissionDenied
            return HttpResponseRedirect(request.GET.get(REDIRECT_FIELD_NAME) or "/admin/")
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or request.get_full_path()
        return HttpResponseRedirect(
            resolve_url("account_login") + "?" + urlencode({REDIRECT_FIELD_NAME: next_url})
        )


company_admin_site = CompanyAdminSite(name="admin")


class CompanyModelAdmin(admin.ModelAdmin):
    """Owners and admins of the company may manage; nobody else sees anything."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_company_manager(request)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return is_company_manager(request)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return is_company_manager(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_company_manager(request)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return is_company_manager(request)


class ReadOnlyCompanyModelAdmin(CompanyModelAdmin):
    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False
