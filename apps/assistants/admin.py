from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.assistants.industry_templates import template_choices, template_get
from apps.assistants.models import AssistantProfile, BusinessFact, FaqEntry
from apps.assistants.services import assistant_profile_get, assistant_profile_update
from apps.audit.services import Actor
from chapi.admin_sites import CompanyModelAdmin, company_admin_site


class AssistantProfileForm(forms.ModelForm):
    industry_template = forms.ChoiceField(label=_("Industry template"), choices=template_choices)
    api_base_url = forms.URLField(
        label=_("API base URL"),
        required=False,
        assume_scheme="https",
        help_text=AssistantProfile._meta.get_field("api_base_url").help_text,
    )
    copy_template = forms.BooleanField(
        label=_("Copy the template's text into my prompt, tone and goals to edit them"),
        required=False,
    )

    class Meta:
        model = AssistantProfile
        fields = [
            "bot_name", "company_display_name", "welcome_message", "languages",
            "industry_template", "persona", "system_prompt", "tone", "goals", "topics_to_avoid",
            "extra_guardrails", "provider", "model", "max_tokens", "temperature", "api_base_url",
            "api_key", "moderation_enabled", "monthly_token_budget", "history_token_limit",
        ]  # fmt: skip

    def clean_languages(self) -> list[str]:
        languages = self.cleaned_data["languages"]
        if not isinstance(languages, list) or not languages:
            raise forms.ValidationError(_('A list such as ["es", "en"].'))
        supported = {code for code, _name in settings.LANGUAGES}
        if any(code not in supported for code in languages):
            raise forms.ValidationError(_("Supported languages: es, en."))
        return languages

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("copy_template") and cleaned.get("industry_template"):
            languages = cleaned.get("languages") or ["es"]
            template = template_get(cleaned["industry_template"], languages[0])
            cleaned["system_prompt"] = template.system
            cleaned["tone"] = template.tone
            cleaned["goals"] = list(template.goals)
        return cleaned


@admin.register(AssistantProfile, site=company_admin_site)
class AssistantProfileAdmin(CompanyModelAdmin):
    form = AssistantProfileForm
    fieldsets = (
        (None, {"fields": ("bot_name", "company_display_name", "welcome_message", "languages")}),
        (
            "Behaviour",
            {
                "fields": (
                    "industry_template", "copy_template", "persona", "system_prompt", "tone",
                    "goals",
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
        changed = set(form.changed_data) - {"copy_template"}
        if form.cleaned_data.get("copy_template"):
            changed |= {"system_prompt", "tone", "goals"}
        data = {field: getattr(obj, field) for field in changed}
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
