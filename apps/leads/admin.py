"""Leads in the company's admin: leads with their score breakdown and history (read-only:
the team works leads in the dashboard, where every change is an event with its source), the
lead settings (the dashboard's form and validation, audited) and the CRM webhook's delivery
log with a re-send action."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from apps.audit.services import Actor
from apps.dashboard.lead_settings import LeadSettingsForm
from apps.leads.crm import WebhookURLError, lead_settings_update, webhook_resend
from apps.leads.models import Lead, LeadEvent, LeadSettings, WebhookDelivery
from apps.leads.scoring import PARTS, reason_text
from apps.leads.services import lead_settings_get
from chapi.admin_sites import CompanyModelAdmin, ReadOnlyCompanyModelAdmin, company_admin_site


def _pretty(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


class LeadEventInline(admin.TabularInline):
    model = LeadEvent
    fields = ("created_at", "kind", "field", "old", "new", "source", "actor", "conversation_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Lead, site=company_admin_site)
class LeadAdmin(ReadOnlyCompanyModelAdmin):
    list_display = (
        "__str__", "email", "phone", "company_name", "stage", "score", "owner",
        "source_channel", "qualified_at", "updated_at",
    )  # fmt: skip
    list_filter = ("stage", "source_channel", "owner", "qualified_at")
    search_fields = ("name", "email", "phone", "company_name", "need")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    inlines = [LeadEventInline]
    fieldsets = (
        (None, {"fields": ("name", "email", "phone", "company_name", "role", "owner", "stage",
                           "tags")}),
        (_("Qualification"), {"fields": ("need", "budget_display", "timeline", "timeline_date",
                                         "preferred_channel", "preferred_time")}),
        (_("Score"), {"fields": ("score", "breakdown", "qualified_at")}),
        (_("Origin"), {"fields": ("source_channel", "first_page", "context_pretty",
                                  "sources_pretty")}),
        (_("Booking"), {"fields": ("booking_kind", "booking_at", "booking_link")}),
        (None, {"fields": ("notes", "visitor_messages", "created_at", "updated_at",
                           "last_activity_at")}),
    )  # fmt: skip
    readonly_fields = ("budget_display", "breakdown", "context_pretty", "sources_pretty")

    @admin.display(description=_("budget"))
    def budget_display(self, obj: Lead) -> str:
        return obj.budget_display

    @admin.display(description=_("score breakdown"))
    def breakdown(self, obj: Lead) -> SafeString:
        rows = [
            (part, item.get("points", 0), item.get("max", 0), reason_text(str(item.get("reason"))))
            for part in PARTS
            if isinstance(item := obj.score_breakdown.get(part), dict)
        ]
        if not rows:
            return format_html("{}", "—")
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{} / {}</td><td>{}</td></tr>", rows),
        )

    @admin.display(description=_("UTM and context"))
    def context_pretty(self, obj: Lead) -> SafeString:
        return _pretty(obj.context)

    @admin.display(description=_("field sources"))
    def sources_pretty(self, obj: Lead) -> SafeString:
        return _pretty(obj.field_sources)


@admin.register(LeadSettings, site=company_admin_site)
class LeadSettingsAdmin(CompanyModelAdmin):
    form = LeadSettingsForm

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # One row per company: go straight to it.
        return HttpResponseRedirect(
            reverse("admin:leads_leadsettings_change", args=[lead_settings_get().pk])
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: LeadSettings, form: Any, change: bool) -> None:
        # The form already applied its values to `obj` (the secret only when typed/removed).
        values = {field: getattr(obj, field) for field in form.changed_data}
        lead_settings_update(
            lead_settings=LeadSettings.objects.get(pk=obj.pk),
            values=values,
            actor=Actor.from_request(request),
        )


@admin.register(WebhookDelivery, site=company_admin_site)
class WebhookDeliveryAdmin(ReadOnlyCompanyModelAdmin):
    list_display = (
        "created_at", "event", "lead", "status", "attempts", "response_code", "delivered_at",
        "error",
    )  # fmt: skip
    list_filter = ("status", "event")
    search_fields = ("url", "error")
    list_select_related = ("lead",)
    fields = (
        "event", "lead", "url", "status", "attempts", "response_code", "response_excerpt",
        "error", "log_pretty", "payload_pretty", "resend_of", "created_at", "delivered_at",
    )  # fmt: skip
    readonly_fields = fields
    actions = ["resend"]

    @admin.display(description=_("attempts log"))
    def log_pretty(self, obj: WebhookDelivery) -> SafeString:
        return _pretty(obj.log)

    @admin.display(description=_("payload"))
    def payload_pretty(self, obj: WebhookDelivery) -> SafeString:
        return _pretty(obj.payload)

    @admin.action(description=_("Re-send the selected deliveries"))
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        actor = Actor.from_request(request)
        count = 0
        for delivery in queryset:
            try:
                webhook_resend(delivery=delivery, actor=actor)
            except WebhookURLError as exc:
                self.message_user(request, exc.messages[0], messages.ERROR)
                return
            count += 1
        self.message_user(
            request, _("%(count)s deliveries queued again.") % {"count": count}, messages.SUCCESS
        )
