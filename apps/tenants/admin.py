"""Platform admin (public host): companies, suspension."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.audit.services import Actor
from apps.tenants.models import Company, CompanySettings, Domain
from apps.tenants.services import company_reactivate, company_suspend, company_update
from chapi.admin_sites import CompanyModelAdmin, company_admin_site


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    fields = ("domain", "is_primary")


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "owner_email", "language", "created_at", "status")
    list_filter = ("language", ("suspended_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "slug", "owner_email")
    readonly_fields = (
        "schema_name", "slug", "owner_email", "created_at", "suspended_at", "suspended_reason",
    )  # fmt: skip
    fields = (
        "name", "slug", "schema_name", "owner_email", "language", "created_at",
        "suspended_at", "suspended_reason",
    )  # fmt: skip
    inlines = [DomainInline]
    actions = ["suspend", "reactivate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Company]:
        return super().get_queryset(request).exclude(schema_name="public")

    def save_model(self, request: HttpRequest, obj: Company, form: Any, change: bool) -> None:
        # Audited in the company's own log, like the same change made by its admins.
        company_update(
            company=Company.objects.get(pk=obj.pk),
            actor=Actor.from_request(request),
            name=form.cleaned_data["name"],
            language=form.cleaned_data["language"],
        )

    @admin.display(description=_("status"))
    def status(self, company: Company) -> str:
        return str(_("suspended") if company.is_suspended else _("active"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Companies are created by signup or `manage.py create_company`, which also create
        # the owner and the schema in one step.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Company | None = None) -> bool:
        return False  # suspend instead: deleting drops the company's schema and all its data

    @admin.action(description=_("Suspend selected companies"))
    def suspend(self, request: HttpRequest, queryset: QuerySet[Company]) -> None:
        actor = Actor.from_request(request)
        for company in queryset:
            company_suspend(company=company, actor=actor, reason="Suspended by platform staff")
        self.message_user(request, _("Suspended %(n)d companies.") % {"n": len(queryset)})

    @admin.action(description=_("Reactivate selected companies"))
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Company]) -> None:
        actor = Actor.from_request(request)
        for company in queryset:
            company_reactivate(company=company, actor=actor)
        self.message_user(
            request, _("Reactivated %(n)d companies.") % {"n": len(queryset)}, messages.SUCCESS
        )


@admin.register(CompanySettings, site=company_admin_site)
class CompanySettingsAdmin(CompanyModelAdmin):
    """A company's name and default language, in its own admin (only its own row)."""

    fields = ("name", "slug", "language")
    readonly_fields = ("slug",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Company]:
        return super().get_queryset(request).filter(pk=request.tenant.pk)  # type: ignore[attr-defined]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        return HttpResponseRedirect(
            reverse("admin:tenants_companysettings_change", args=[request.tenant.pk])  # type: ignore[attr-defined]
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Company, form: Any, change: bool) -> None:
        stored = Company.objects.get(pk=obj.pk)
        company_update(
            company=stored,
            actor=Actor.from_request(request),
            name=form.cleaned_data["name"],
            language=form.cleaned_data["language"],
        )
