"""Dashboard: messaging channels — connect a Telegram bot or a WhatsApp number, see each
channel's status and the URLs to paste into the provider, disconnect."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import MANAGER_ROLES
from apps.accounts.permissions import member_required
from apps.audit.services import Actor
from apps.channels.adapters import SetupError
from apps.channels.models import ChannelConnection
from apps.channels.services import channel_connect, channel_disconnect, webhook_url
from apps.dashboard.views import public_base_url

SECRET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})


class TelegramForm(forms.Form):
    kind = "telegram"
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)
    bot_token = forms.CharField(
        label=gettext_lazy("Bot token"),
        widget=SECRET,
        help_text=gettext_lazy("From @BotFather, like 123456789:AA…"),
    )


class TwilioForm(forms.Form):
    kind = "whatsapp_twilio"
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)
    account_sid = forms.RegexField(
        label=gettext_lazy("Account SID"), regex=r"^AC[0-9a-fA-F]{32}$", max_length=34
    )
    auth_token = forms.CharField(label=gettext_lazy("Auth token"), widget=SECRET)
    sender = forms.RegexField(
        label=gettext_lazy("WhatsApp sender"),
        regex=r"^whatsapp:\+[1-9][0-9]{6,14}$",
        help_text=gettext_lazy("Like whatsapp:+14155238886"),
    )


class MetaForm(forms.Form):
    kind = "whatsapp_meta"
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)
    phone_number_id = forms.RegexField(
        label=gettext_lazy("Phone number ID"), regex=r"^[0-9]{5,30}$"
    )
    access_token = forms.CharField(label=gettext_lazy("Access token"), widget=SECRET)
    app_secret = forms.CharField(label=gettext_lazy("App secret"), widget=SECRET)
    verify_token = forms.CharField(
        label=gettext_lazy("Verify token"),
        required=False,
        max_length=200,
        help_text=gettext_lazy("Any text you choose; empty: CHAPI makes one up."),
    )


FORMS: dict[str, type[forms.Form]] = {
    form.kind: form  # type: ignore[attr-defined]
    for form in (TelegramForm, TwilioForm, MetaForm)
}


def _base(request: HttpRequest) -> str:
    """Where providers reach the product: PUBLIC_BASE_URL, or the public host as this
    browser reaches it (development)."""
    return settings.PUBLIC_BASE_URL or public_base_url(request)


def _channel_rows(request: HttpRequest) -> list[dict[str, Any]]:
    base = _base(request)
    rows = []
    for channel in ChannelConnection.objects.all():
        rows.append(
            {
                "channel": channel,
                "webhook_url": webhook_url(channel, base=base),
                "status_url": webhook_url(channel, status=True, base=base),
            }
        )
    return rows


@member_required(*MANAGER_ROLES)
@require_http_methods(["GET", "POST"])
@never_cache
def channels_home(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    forms_by_kind = {
        name: form_class(request.POST if kind == name else None, prefix=name)
        for name, form_class in FORMS.items()
    }
    status = 200
    if request.method == "POST":
        form = forms_by_kind.get(kind)
        status = 400
        if form is not None and form.is_valid():
            data = dict(form.cleaned_data)
            name = data.pop("name", "")
            try:
                channel = channel_connect(
                    company=request.tenant,  # type: ignore[attr-defined]
                    kind=kind,
                    name=name,
                    credentials=data,
                    actor=Actor.from_request(request),
                    base_url=_base(request),
                )
            except SetupError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Channel connected."))
                # Meta's verify token is shown this once, to paste into the Meta app.
                return _detail(request, channel, verify_token=channel.verify_token)
    return render(
        request,
        "dashboard/channels.html",
        {
            "rows": _channel_rows(request),
            "forms": forms_by_kind,
        },
        status=status,
    )


@member_required(*MANAGER_ROLES)
@never_cache
def channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, get_object_or_404(ChannelConnection, pk=pk))


def _detail(
    request: HttpRequest, channel: ChannelConnection, verify_token: str = ""
) -> HttpResponse:
    base = _base(request)
    return render(
        request,
        "dashboard/channel.html",
        {
            "channel": channel,
            "webhook_url": webhook_url(channel, base=base),
            "status_url": webhook_url(channel, status=True, base=base),
            "verify_token": verify_token,
            "recent": channel.inbound_events.all()[:20],
            "failed": channel.outbound_messages.filter(status="failed").order_by("-updated_at")[
                :10
            ],
        },
    )


@member_required(*MANAGER_ROLES)
@require_POST
def channel_disconnect_view(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(ChannelConnection, pk=pk)
    if channel.is_active:
        channel_disconnect(channel=channel, actor=Actor.from_request(request))
        messages.success(
            request,
            _("“%(name)s” was disconnected: it no longer receives messages.")
            % {"name": channel.name},
        )
    return redirect("dashboard:channels")
