"""Dashboard: the lead settings — scoring weights and threshold, who hears about qualified
leads, the CRM webhook (with a test event and the delivery log, each delivery re-sendable),
booking and handoff rules. Owners and admins only."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import MANAGER_ROLES
from apps.accounts.permissions import member_required
from apps.audit.services import Actor
from apps.leads.crm import (
    WebhookURLError,
    lead_settings_update,
    webhook_resend,
    webhook_test_send,
    webhook_url_validate,
)
from apps.leads.models import LeadSettings, WebhookDelivery
from apps.leads.services import lead_settings_get
from chapi.fields import KEEP

DELIVERIES_SHOWN = 50
MAX_NOTIFY_EMAILS = 20

# Weekday names accepted in the slots editor (English and Spanish, with or without accents).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = {
    **{name: day for day, name in enumerate(WEEKDAYS)},
    **{name: day for day, name in enumerate(("lun", "mar", "mie", "jue", "vie", "sab", "dom"))},
    "mié": 2, "sáb": 5,
}  # fmt: skip
_SLOT = re.compile(r"^\s*([^\s\d]{3})[a-zéá]*\.?\s+([01]?\d|2[0-3])[:.h]([0-5]\d)\s*$", re.I)

# Inclusive bounds of the numeric settings.
BOUNDS = {
    "weight_need": (0, 100),
    "weight_budget": (0, 100),
    "weight_authority": (0, 100),
    "weight_timeline": (0, 100),
    "weight_engagement": (0, 100),
    "qualify_threshold": (1, 100),
    "timeline_full_days": (1, 3650),
    "booking_minutes": (5, 480),
    "booking_notice_hours": (0, 720),
    "handoff_wait_minutes": (1, 1440),
}
WEIGHTS = tuple(name for name in BOUNDS if name.startswith("weight_"))


def slots_parse(text: str) -> list[dict[str, Any]]:
    """Weekly slots from lines like "mon 10:00" (or "lunes 10:00"): sorted, without
    repeats, as stored in LeadSettings.booking_slots. Raises ValidationError naming the
    first line it cannot read."""
    slots: set[tuple[int, str]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _SLOT.match(line)
        day = _WEEKDAY_NAMES.get(match.group(1).lower()) if match else None
        if match is None or day is None:
            raise forms.ValidationError(
                _('Line %(number)s: write a day and a time, like "mon 10:00".'),
                code="slot",
                params={"number": number},
            )
        slots.add((day, f"{int(match.group(2)):02d}:{match.group(3)}"))
    return [{"weekday": day, "time": time} for day, time in sorted(slots)]


def slots_text(slots: Any) -> str:
    if not isinstance(slots, list):
        return ""
    lines = []
    for slot in slots:
        if isinstance(slot, dict) and slot.get("weekday") in range(7):
            lines.append(f"{WEEKDAYS[slot['weekday']]} {slot.get('time', '')}")
    return "\n".join(lines)


class SlotsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 5, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        return slots_text(value) if isinstance(value, list) else value

    def clean(self, value: Any) -> list[dict[str, Any]]:  # type: ignore[override]
        return slots_parse(super().clean(value) or "")


def _formfield(db_field: models.Field, **kwargs: Any) -> forms.Field | None:
    if isinstance(db_field, models.URLField):
        kwargs["assume_scheme"] = "https"  # what someone pasting "crm.example.com" means
    return db_field.formfield(**kwargs)


class LeadSettingsForm(forms.ModelForm):
    booking_slots = SlotsField(
        label=gettext_lazy("Weekly time slots"),
        required=False,
        help_text=gettext_lazy(
            'One per line, a day and a time in the company\'s time zone: "mon 10:00", '
            '"thu 16:30". Ignored when there is a booking link.'
        ),
    )

    class Meta:
        model = LeadSettings
        formfield_callback = _formfield
        fields = [
            "weight_need",
            "weight_budget",
            "weight_authority",
            "weight_timeline",
            "weight_engagement",
            "qualify_threshold",
            "timeline_full_days",
            "model_reading",
            "notify_emails",
            "crm_webhook_url",
            "crm_webhook_secret",
            "booking_link",
            "booking_slots",
            "booking_minutes",
            "booking_notice_hours",
            "handoff_wait_minutes",
            "handoff_on_price_when_qualified",
            "handoff_when_unanswered",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (low, high) in BOUNDS.items():
            field = self.fields[name]
            field.validators += [MinValueValidator(low), MaxValueValidator(high)]
            field.widget.attrs.update(min=low, max=high)
        self.fields["notify_emails"].help_text = gettext_lazy(
            "Comma separated. Empty: the owners and admins, and the lead's owner."
        )
        self.fields["crm_webhook_secret"].help_text = gettext_lazy(
            "Signs every event (X-Chapi-Signature); your CRM checks it. Write-only."
        )

    def clean_notify_emails(self) -> list[str]:
        emails = list(dict.fromkeys(e.strip().lower() for e in self.cleaned_data["notify_emails"]))
        if len(emails) > MAX_NOTIFY_EMAILS:
            raise forms.ValidationError(
                _("At most %(count)s addresses."), params={"count": MAX_NOTIFY_EMAILS}
            )
        return emails

    def clean_crm_webhook_url(self) -> str:
        url: str = self.cleaned_data["crm_webhook_url"].strip()
        if url:
            webhook_url_validate(url)
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if all(name in data for name in WEIGHTS) and not sum(data[n] for n in WEIGHTS):
            raise forms.ValidationError(_("At least one weight must be above zero."))
        secret = data.get("crm_webhook_secret")
        stored = self.instance.crm_webhook_secret if self.instance.pk else ""
        has_secret = bool(stored) if secret is KEEP else bool(secret)
        if data.get("crm_webhook_url") and not has_secret:
            self.add_error(
                "crm_webhook_secret",
                _("Set a signing secret so that your CRM can tell the events are yours."),
            )
        return data

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The fields in the page's sections."""
        sections = [
            (
                _("Scoring"),
                [*WEIGHTS, "qualify_threshold", "timeline_full_days", "model_reading"],
            ),
            (_("Who is told"), ["notify_emails"]),
            (_("CRM webhook"), ["crm_webhook_url", "crm_webhook_secret"]),
            (
                _("Booking"),
                ["booking_link", "booking_slots", "booking_minutes", "booking_notice_hours"],
            ),
            (
                _("Handoff to a person"),
                [
                    "handoff_wait_minutes",
                    "handoff_on_price_when_qualified",
                    "handoff_when_unanswered",
                ],
            ),
        ]
        return [(title, [self[name] for name in names]) for title, names in sections]

    def values(self) -> dict[str, Any]:
        """The cleaned values to store (the secret only when it was typed or removed)."""
        values = {name: self.cleaned_data[name] for name in self.Meta.fields}
        if values["crm_webhook_secret"] is KEEP:
            del values["crm_webhook_secret"]
        return values


def _page(request: HttpRequest, form: LeadSettingsForm, status: int = 200) -> HttpResponse:
    deliveries = WebhookDelivery.objects.select_related("lead")[:DELIVERIES_SHOWN]
    return render(
        request,
        "dashboard/lead_settings.html",
        {"form": form, "deliveries": deliveries, "lead_settings": form.instance},
        status=status,
    )


@member_required(*MANAGER_ROLES)
@require_http_methods(["GET", "POST"])
@never_cache
def lead_settings_home(request: HttpRequest) -> HttpResponse:
    lead_settings = lead_settings_get()
    if request.method != "POST":
        return _page(request, LeadSettingsForm(instance=lead_settings))
    form = LeadSettingsForm(request.POST, instance=lead_settings)
    if not form.is_valid():
        return _page(request, form, status=400)
    lead_settings_update(
        lead_settings=lead_settings, values=form.values(), actor=Actor.from_request(request)
    )
    messages.success(request, _("Lead settings saved."))
    return redirect("dashboard:lead_settings")


@member_required(*MANAGER_ROLES)
@require_POST
def lead_webhook_test_view(request: HttpRequest) -> HttpResponse:
    try:
        webhook_test_send(actor=Actor.from_request(request))
    except WebhookURLError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("Test event queued: its delivery shows below."))
    return redirect("dashboard:lead_settings")


@member_required(*MANAGER_ROLES)
@require_POST
def lead_webhook_resend_view(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=pk)
    try:
        webhook_resend(delivery=delivery, actor=Actor.from_request(request))
    except WebhookURLError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("Delivery queued again."))
    return redirect("dashboard:lead_settings")
