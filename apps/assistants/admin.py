from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from apps.assistants.models import AssistantProfile, BusinessFact, FaqEntry
from apps.assistants.services import assistant_profile_get, assistant_profile_update
from apps.audit.services import Actor
from chapi.admin_sites import CompanyModelAdmin, company_admin_site


@admin.register(AssistantProfile, site=company_admin_site)
class AssistantProfileAdmin(CompanyModelAdmin):
    fieldsets = (
        (None, {"fields": ("bot_name", "company_display_name", "welcome_message", "languages")}),
        (
            "Behaviour",
            {
                "fields": (
                    "industry_template", "persona", "system_prompt", "tone", "goals",
                    "topics_to_avoid", "extra_guardrails",
                )
            },
        ),
        (
            "Model",
            {
                "fields": (
                    "provider", "model", "max_tokens", "temperature", "api_base_url", "api_key",
                    "moderation_enabled",
                )
            },
        ),
        ("Limits", {"fields": ("monthly_token_budget", "history_token_limit")}),
    )  # fmt: skip

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


@admin.register(FaqEntry, site=company_admin_site)
class FaqEntryAdmin(CompanyModelAdmin):
    list_display = ("question", "position")
    list_editable = ("position",)
    search_fields = ("question", "answer")


@admin.register(BusinessFact, site=company_admin_site)
class BusinessFactAdmin(CompanyModelAdmin):
    list_display = ("title", "kind", "price", "position")
    list_filter = ("kind",)
    list_editable = ("position",)
    search_fields = ("title", "text")
