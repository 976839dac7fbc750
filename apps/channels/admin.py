"""The channels in the company's admin: status, approved WhatsApp templates, what came in and
went out, and disconnecting. Connecting (which checks the credentials with the provider and
registers the webhook) is done in the dashboard."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.audit.services import Actor, audit_diff, audit_record
from apps.channels.models import ChannelConnection, InboundEvent, OutboundMessage
from apps.channels.services import channel_disconnect
from chapi.admin_sites import CompanyModelAdmin, ReadOnlyCompanyModelAdmin, company_admin_site


class ChannelConnectionForm(forms.ModelForm):
    class Meta:
        model = ChannelConnection
        fields = ["name", "templates"]
        help_texts = {
            "templates": _(
                "WhatsApp templates approved by Meta, the only messages allowed outside the "
                '24-hour window: [{"name": "seguimiento", "language": "es", "body": "…", '
                '"content_sid": "HX… (Twilio)"}]'
            )
        }

    def clean_templates(self) -> list[dict[str, Any]]:
        templates = self.cleaned_data["templates"] or []
        if not isinstance(templates, list) or not all(
            isinstance(t, dict) and isinstance(t.get("name"), str) and t["name"] for t in templates
        ):
            raise forms.ValidationError(_("A list of objects, each with a name."))
        return templates


@admin.register(ChannelConnection, site=company_admin_site)
class ChannelConnectionAdmin(CompanyModelAdmin):
    form = ChannelConnectionForm
    list_display = (
        "name",
        "kind",
        "status",
        "bot_username",
        "sender",
        "display_phone_number",
        "last_update_at",
        "last_error_at",
    )
    list_filter = ("kind", "status")
    fields = (
        "name",
        "kind",
        "status",
        "bot_username",
        "account_sid",
        "sender",
        "phone_number_id",
        "display_phone_number",
        "templates",
        "last_update_at",
        "last_error",
        "last_error_at",
        "created_at",
        "created_by",
    )
    readonly_fields = tuple(f for f in fields if f not in {"name", "templates"})
    actions = ["disconnect"]

    def add_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Connecting checks the credentials with the provider and registers the webhook:
        # the admin's "add" is the dashboard's connect form.
        return HttpResponseRedirect(reverse("dashboard:channels"))

    def save_model(
        self, request: HttpRequest, obj: ChannelConnection, form: Any, change: bool
    ) -> None:
        stored = ChannelConnection.objects.get(pk=obj.pk)
        before = {field: getattr(stored, field) for field in form.changed_data}
        super().save_model(request, obj, form, change)
        changes = audit_diff(obj, before)
        if changes:
            audit_record(
                actor=Actor.from_request(request),
                action="channel.update",
                instance=obj,
                changes=changes,
            )

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # disconnect instead: the history stays

    @admin.action(description=_("Disconnect the selected channels"))
    def disconnect(self, request: HttpRequest, queryset: QuerySet[ChannelConnection]) -> None:
        for channel in queryset:
            channel_disconnect(channel=channel, actor=Actor.from_request(request))
        self.message_user(request, _("Disconnected."), messages.SUCCESS)


@admin.register(InboundEvent, site=company_admin_site)
class InboundEventAdmin(ReadOnlyCompanyModelAdmin):
    list_display = ("received_at", "connection", "kind", "outcome", "reason", "provider_id")
    list_filter = ("connection", "outcome", "kind")


@admin.register(OutboundMessage, site=company_admin_site)
class OutboundMessageAdmin(ReadOnlyCompanyModelAdmin):
    list_display = ("created_at", "connection", "message", "part", "status", "attempts", "error")
    list_filter = ("connection", "status")
