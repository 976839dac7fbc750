from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from apps.assistants.models import AssistantProfile
from apps.assistants.services import assistant_profile_get, assistant_profile_update
from apps.audit.services import Actor
from chapi.admin_sites import CompanyModelAdmin, company_admin_site


@admin.register(AssistantProfile, site=company_admin_site)
class AssistantProfileAdmin(CompanyModelAdmin):
    fields = ("bot_name", "welcome_message", "model", "api_base_url", "api_key")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # One profile per company: go straight to it.
        profile = assistant_profile_get()
        return HttpResponseRedirect(
            reverse("admin:assistants_assistantprofile_change", args=[profile.pk])
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: AssistantProfile, form: Any, change: bool
    ) -> None:
        stored = AssistantProfile.objects.get(pk=obj.pk)
        data = {field: getattr(obj, field) for field in form.changed_data}
        assistant_profile_update(profile=stored, actor=Actor.from_request(request), data=data)
