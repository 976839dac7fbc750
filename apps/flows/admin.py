"""Flows in the company's admin: versions are added (validated: every problem is named with
its line) and restored, never edited in place; runs are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.audit.services import Actor
from apps.flows.models import FlowRun, FlowVersion
from apps.flows.services import flow_version_restore, flow_version_save
from apps.flows.spec import FlowError, flows_parse
from chapi.admin_sites import CompanyModelAdmin, ReadOnlyCompanyModelAdmin, company_admin_site


class FlowVersionForm(forms.ModelForm):
    class Meta:
        model = FlowVersion
        fields = ["source", "note"]
        widgets = {"source": forms.Textarea(attrs={"rows": 24, "spellcheck": "false",
                                                   "style": "font-family: monospace"})}  # fmt: skip

    def clean_source(self) -> str:
        source: str = self.cleaned_data["source"].replace("\r\n", "\n")
        try:
            flows_parse(source)
        except FlowError as exc:
            raise forms.ValidationError([str(problem) for problem in exc.problems]) from None
        return source


@admin.register(FlowVersion, site=company_admin_site)
class FlowVersionAdmin(CompanyModelAdmin):
    form = FlowVersionForm
    list_display = ("__str__", "created_at", "author", "note", "restored_from")
    list_select_related = ("author",)
    actions = ["restore"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None:  # saved versions are history
            return ("number", "source", "note", "author", "restored_from", "created_at")
        return ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: FlowVersion, form: Any, change: bool) -> None:
        if change:
            return
        saved = flow_version_save(
            source=form.cleaned_data["source"], note=form.cleaned_data["note"],
            author=request.user, actor=Actor.from_request(request),  # type: ignore[arg-type]
        )  # fmt: skip
        obj.pk, obj.number = saved.pk, saved.number

    @admin.action(description=_("Restore the selected version (as a new version)"))
    def restore(self, request: HttpRequest, queryset: QuerySet[FlowVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, _("Choose one version to restore."), messages.WARNING)
            return
        try:
            version = flow_version_restore(
                version=queryset.get(),
                author=request.user,  # type: ignore[arg-type]
                actor=Actor.from_request(request),
            )
        except FlowError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request, _("Restored as version %(number)s.") % {"number": version.number}
        )


@admin.register(FlowRun, site=company_admin_site)
class FlowRunAdmin(ReadOnlyCompanyModelAdmin):
    list_display = (
        "created_at",
        "flow",
        "rule_index",
        "trigger",
        "detail",
        "conversation",
        "version",
    )
    list_filter = ("flow",)
    search_fields = ("flow", "trigger", "detail")
