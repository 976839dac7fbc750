"""Follow-ups in the company's admin: the settings (audited) and the list, read-only (the team
cancels a follow-up from the lead's page)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from apps.audit.services import Actor, audit_diff, audit_record
from apps.dashboard.flows import FollowUpSettingsForm
from apps.followups.models import FollowUp, FollowUpSettings
from apps.followups.services import followup_settings_get
from chapi.admin_sites import CompanyModelAdmin, ReadOnlyCompanyModelAdmin, company_admin_site


@admin.register(FollowUpSettings, site=company_admin_site)
class FollowUpSettingsAdmin(CompanyModelAdmin):
    form = FollowUpSettingsForm

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return HttpResponseRedirect(
            reverse("admin:followups_followupsettings_change", args=[followup_settings_get().pk])
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: FollowUpSettings, form: Any, change: bool
    ) -> None:
        old = FollowUpSettings.objects.get(pk=obj.pk)
        before = {name: getattr(old, name) for name in form.changed_data}
        super().save_model(request, obj, form, change)
        changes = audit_diff(obj, before)
        if changes:
            audit_record(actor=Actor.from_request(request), action="followup_settings.update",
                         instance=obj, changes=changes)  # fmt: skip


@admin.register(FollowUp, site=company_admin_site)
class FollowUpAdmin(ReadOnlyCompanyModelAdmin):
    list_display = ("due_at", "status", "source", "rule_key", "conversation", "sent_at", "reason")
    list_filter = ("status", "source")
    search_fields = ("text", "reason", "rule_key")
