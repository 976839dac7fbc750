"""Dashboard: the web widget — keys with their allowed origins, the snippet, a live preview
and the widget's look, pre-chat fields and business hours."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import MANAGER_ROLES
from apps.accounts.permissions import member_required
from apps.audit.services import Actor, audit_diff, audit_record
from apps.channels.models import WidgetSettings
from apps.dashboard.views import public_base_url
from apps.tenants.forms import OriginsField
from apps.widget.models import WidgetKey
from apps.widget.services import (
    widget_config,
    widget_key_create,
    widget_key_revoke,
    widget_key_update,
    widget_settings_get,
    widget_snippet,
)
from apps.widget.views import socket_url


class WidgetKeyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, initial="Website")
    allowed_origins = OriginsField(
        label=gettext_lazy("Allowed websites"),
        help_text=gettext_lazy(
            "One origin per line, e.g. https://www.example.com. Only these websites can show "
            "the widget; this company's own pages always can."
        ),
    )


class WidgetOriginsForm(forms.Form):
    allowed_origins = OriginsField(label=gettext_lazy("Allowed websites"))


class WidgetSettingsForm(forms.ModelForm):
    hours_days = forms.TypedMultipleChoiceField(
        label=gettext_lazy("Open days"),
        choices=[
            (0, gettext_lazy("Monday")),
            (1, gettext_lazy("Tuesday")),
            (2, gettext_lazy("Wednesday")),
            (3, gettext_lazy("Thursday")),
            (4, gettext_lazy("Friday")),
            (5, gettext_lazy("Saturday")),
            (6, gettext_lazy("Sunday")),
        ],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WidgetSettings
        fields = [
            "primary_color",
            "position",
            "theme",
            "launcher_text",
            "avatar_url",
            "prechat_name",
            "prechat_email",
            "prechat_phone",
            "hours_enabled",
            "hours_days",
            "hours_start",
            "hours_end",
            "time_zone",
            "offline_message",
        ]
        widgets = {
            "primary_color": forms.TextInput(attrs={"type": "color"}),
            "hours_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "hours_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean_avatar_url(self) -> str:
        url: str = self.cleaned_data["avatar_url"]
        if url and not url.startswith("https://") and not settings.DEBUG:
            raise forms.ValidationError(_("Use an https:// address."))
        return url


def _company_key(request: HttpRequest, pk: int) -> WidgetKey:
    # Widget keys live in the public schema: only the company filter keeps them apart.
    return get_object_or_404(WidgetKey, pk=pk, company=request.tenant)  # type: ignore[attr-defined]


@member_required(*MANAGER_ROLES)
@require_http_methods(["GET", "POST"])
def widget_home(request: HttpRequest) -> HttpResponse:
    """Keys and the create form; the widget's settings."""
    company = request.tenant  # type: ignore[attr-defined]
    key_form = WidgetKeyForm(request.POST if "create_key" in request.POST else None)
    options = widget_settings_get()
    settings_form = WidgetSettingsForm(
        request.POST if "save_settings" in request.POST else None, instance=options
    )
    actor = Actor.from_request(request)
    if "create_key" in request.POST and key_form.is_valid():
        widget_key = widget_key_create(
            company=company,
            name=key_form.cleaned_data["name"],
            origins=key_form.cleaned_data["allowed_origins"],
            actor=actor,
        )
        messages.success(request, _("Widget key created. Paste the snippet into your website."))
        return redirect("dashboard:widget_key", pk=widget_key.pk)
    if "save_settings" in request.POST and settings_form.is_valid():
        before = {
            field: getattr(WidgetSettings.objects.get(pk=options.pk), field)
            for field in settings_form.changed_data
        }
        saved = settings_form.save()
        changes = audit_diff(saved, before)
        if changes:
            audit_record(
                actor=actor, action="widget_settings.update", instance=saved, changes=changes
            )
        messages.success(request, _("Widget settings saved."))
        return redirect("dashboard:widget")
    keys = WidgetKey.objects.filter(company=company)
    return render(
        request,
        "dashboard/widget.html",
        {"keys": keys, "key_form": key_form, "settings_form": settings_form},
        status=400 if request.method == "POST" else 200,
    )


@member_required(*MANAGER_ROLES)
@require_http_methods(["GET", "POST"])
def widget_key_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One key: the snippet, the iframe, a live preview and its allowed origins."""
    widget_key = _company_key(request, pk)
    form = WidgetOriginsForm(
        request.POST or None, initial={"allowed_origins": widget_key.allowed_origins}
    )
    if request.method == "POST" and widget_key.is_active and form.is_valid():
        widget_key_update(
            widget_key=widget_key,
            origins=form.cleaned_data["allowed_origins"],
            actor=Actor.from_request(request),
        )
        messages.success(request, _("Allowed websites saved."))
        return redirect("dashboard:widget_key", pk=widget_key.pk)
    public = public_base_url(request)
    config = widget_config(widget_key, socket_url(request, widget_key))
    snippet = widget_snippet(
        script_url=f"{public}{static('chapi-widget.js')}", widget_key=widget_key, config=config
    )
    embed_url = request.build_absolute_uri(f"/embed?token={widget_key.key}")
    return render(
        request,
        "dashboard/widget_key.html",
        {
            "widget_key": widget_key,
            "form": form,
            "snippet": snippet,
            "embed_url": embed_url,
            "iframe_snippet": (
                f'<iframe src="{embed_url}" title="Chat" '
                'style="width:400px;height:600px;border:0"></iframe>'
            ),
        },
        status=400 if request.method == "POST" else 200,
    )


@member_required(*MANAGER_ROLES)
@require_POST
def widget_key_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    widget_key = _company_key(request, pk)
    if widget_key.is_active:
        widget_key_revoke(widget_key=widget_key, actor=Actor.from_request(request))
        messages.success(
            request,
            _("The widget key “%(name)s” was revoked: websites using it show no chat any more.")
            % {"name": widget_key.name},
        )
    return redirect("dashboard:widget")
