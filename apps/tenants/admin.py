"""Platform admin (public host): companies, suspension."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.audit.services import Actor
from apps.tenants.forms import OriginsField
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
        count = len(queryset)
        self.message_user(
            request,
            ngettext("Suspended %(n)d company.", "Suspended %(n)d companies.", count)
            % {"n": count},
        )

    @admin.action(description=_("Reactivate selected companies"))
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Company]) -> None:
        actor = Actor.from_request(request)
        for company in queryset:
            company_reactivate(company=company, actor=actor)
        count = len(queryset)
        self.message_user(
            request,
            ngettext("Reactivated %(n)d company.", "Reactivated %(n)d companies.", count)
            % {"n": count},
            messages.SUCCESS,
        )


class CompanySettingsForm(forms.ModelForm):
    allowed_origins = OriginsField(
        label=_("Allowed origins"),
        required=False,
        help_text=_("Websites allowed to call the REST API from visitors' browsers, one per line."),
    )

    class Meta:
        model = CompanySettings
        fields = ["name", "language", "allowed_origins"]


@admin.register(CompanySettings, site=company_admin_site)
class CompanySettingsAdmin(CompanyModelAdmin):
    """A company's name, default language and allowed origins, in its own admin (only its own
    row)."""

    form = CompanySettingsForm
    fields = ("name", "slug", "language", "allowed_origins")
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
            allowed_origins=form.cleaned_data["allowed_origins"],
        )
