"""Dashboard: conversation flows (YAML) and follow-up settings.

Owners and admins edit the flows: "Check" validates without saving, "Save" makes a new
version; every problem is listed with its line, and the submitted text is shown numbered with
those lines marked. Earlier versions can be read and restored (as a new version). Agents and
viewers read the flows in use. Recent flow runs and follow-ups show what the flows did.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import MANAGER_ROLES
from apps.accounts.permissions import member_required
from apps.audit.services import Actor, audit_diff, audit_record
from apps.flows.actions import ACTIONS
from apps.flows.models import FlowRun, FlowVersion
from apps.flows.services import flow_version_restore, flow_version_save, flows_active
from apps.flows.spec import MAX_SOURCE_BYTES, FlowError, FlowSet, Problem, flows_parse
from apps.followups.models import FollowUp, FollowUpSettings
from apps.followups.services import followup_cancel, followup_settings_get
from apps.leads import selectors

VERSIONS_SHOWN = 20
RUNS_SHOWN = 30

EXAMPLE = """\
# Conversation flows: each flow is a list of rules (trigger, message, actions).
# See the reference below the editor.
flows:
  onboarding:
    - trigger: "nuevo_usuario"
      message: "¡Bienvenido! Soy tu asistente de ventas..."
      actions: ["identificar_necesidad", "calificar_presupuesto"]

  seguimiento:
    - trigger: "7_dias_sin_actividad"
      message: "¿Sigues interesado en nuestros servicios?"
      actions: ["re_engagement", "descuento_especial"]

discount:
  code: "VUELVE10"
  text: "Usa el código {code} y obtén un 10% de descuento este mes."
"""


class FollowUpSettingsForm(forms.ModelForm):
    class Meta:
        model = FollowUpSettings
        fields = ["enabled", "quiet_start", "quiet_end", "time_zone", "email",
                  "whatsapp_template", "max_unanswered"]  # fmt: skip
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean_time_zone(self) -> str:
        import zoneinfo

        value: str = self.cleaned_data["time_zone"].strip()
        if value and value not in zoneinfo.available_timezones():
            raise forms.ValidationError(_("Unknown time zone (e.g. America/Mexico_City)."))
        return value

    def clean_max_unanswered(self) -> int:
        value: int = self.cleaned_data["max_unanswered"]
        if not 1 <= value <= 10:
            raise forms.ValidationError(_("Between 1 and 10."))
        return value


def _numbered(source: str, problems: list[Problem]) -> list[dict[str, Any]]:
    bad: dict[int, list[str]] = {}
    for problem in problems:
        bad.setdefault(problem.line, []).append(problem.message)
    lines = source.splitlines()
    # A problem at the end of the text (an unclosed quote) is on the line after the last one.
    lines += [""] * (max(bad, default=0) - len(lines))
    return [
        {"number": n, "text": line, "problems": bad.get(n, [])}
        for n, line in enumerate(lines, start=1)
    ]


def _rules_table(flows: FlowSet) -> list[dict[str, Any]]:
    return [
        {
            "flow": rule.flow,
            "number": rule.index + 1,
            "trigger": rule.trigger.label,
            "message": rule.message,
            "actions": [call.label for call in rule.actions],
            "once": rule.once,
        }
        for rule in flows.rules
    ]


def _page(
    request: HttpRequest,
    *,
    source: str,
    problems: list[Problem] | None = None,
    checked: FlowSet | None = None,
    settings_form: FollowUpSettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    member = request.membership  # type: ignore[attr-defined]
    current = FlowVersion.objects.order_by("-number").first()
    context = {
        "can_edit": member.role in MANAGER_ROLES,
        "source": source,
        "problems": problems or [],
        "numbered": _numbered(source, problems) if problems else [],
        "checked": _rules_table(checked) if checked is not None else None,
        "current": current,
        "rules": _rules_table(flows_active()),
        "versions": FlowVersion.objects.select_related("author")[:VERSIONS_SHOWN],
        "runs": FlowRun.objects.filter(
            conversation__in=selectors.conversations_visible(member=member)
        ).select_related("conversation")[:RUNS_SHOWN],
        "actions": sorted(ACTIONS.values(), key=lambda kind: kind.name),
        "settings_form": settings_form
        or FollowUpSettingsForm(instance=followup_settings_get(), prefix="followups"),
        "scheduled": FollowUp.objects.filter(status=FollowUp.Status.SCHEDULED).count(),
        "max_kb": MAX_SOURCE_BYTES // 1024,
    }
    return render(request, "dashboard/flows.html", context, status=status)


@member_required()
@require_http_methods(["GET", "POST"])
@never_cache
def flows_home(request: HttpRequest) -> HttpResponse:
    current = FlowVersion.objects.order_by("-number").first()
    if request.method != "POST":
        return _page(request, source=current.source if current else EXAMPLE)
    if request.membership.role not in MANAGER_ROLES:  # type: ignore[attr-defined]
        raise PermissionDenied
    source = request.POST.get("source", "").replace("\r\n", "\n")
    try:
        checked = flows_parse(source)
    except FlowError as exc:
        messages.error(
            request,
            ngettext("The flows have %(count)d problem: nothing was saved.",
                     "The flows have %(count)d problems: nothing was saved.",
                     len(exc.problems)) % {"count": len(exc.problems)},
        )  # fmt: skip
        return _page(request, source=source, problems=exc.problems, status=400)
    if request.POST.get("action") == "check":
        messages.success(
            request,
            ngettext(
                "The flows are valid: %(count)d rule.",
                "The flows are valid: %(count)d rules.",
                len(checked.rules),
            )
            % {"count": len(checked.rules)},
        )
        return _page(request, source=source, checked=checked)
    if current is not None and current.source == source:
        messages.info(request, _("Nothing changed."))
        return redirect("dashboard:flows")
    version = flow_version_save(
        source=source, author=request.user, actor=Actor.from_request(request),  # type: ignore[arg-type]
        note=request.POST.get("note", "").strip(),
    )  # fmt: skip
    messages.success(
        request, _("Saved as version %(number)s: it is in use now.") % {"number": version.number}
    )
    return redirect("dashboard:flows")


@member_required()
@require_GET
@never_cache
def flow_version_view(request: HttpRequest, number: int) -> HttpResponse:
    version = get_object_or_404(FlowVersion.objects.select_related("author"), number=number)
    current = FlowVersion.objects.order_by("-number").first()
    return render(request, "dashboard/flow_version.html", {
        "version": version, "is_current": current is not None and current.pk == version.pk,
        "can_edit": request.membership.role in MANAGER_ROLES,  # type: ignore[attr-defined]
        "lines": version.source.splitlines(),
    })  # fmt: skip


@member_required(*MANAGER_ROLES)
@require_POST
def flow_version_restore_view(request: HttpRequest, number: int) -> HttpResponse:
    version = get_object_or_404(FlowVersion, number=number)
    current = FlowVersion.objects.order_by("-number").first()
    if current is not None and current.pk == version.pk:
        messages.info(request, _("This version is already in use."))
        return redirect("dashboard:flows")
    try:
        restored = flow_version_restore(version=version, author=request.user,  # type: ignore[arg-type]
                                        actor=Actor.from_request(request))  # fmt: skip
    except FlowError:
        messages.error(request, _("This version no longer validates: open it, fix it and save."))
        return redirect("dashboard:flow_version", number=number)
    messages.success(
        request,
        _("Version %(old)s restored as version %(new)s.") % {"old": number, "new": restored.number},
    )
    return redirect("dashboard:flows")


@member_required(*MANAGER_ROLES)
@require_POST
def followup_settings_view(request: HttpRequest) -> HttpResponse:
    row = followup_settings_get()
    fields = FollowUpSettingsForm.Meta.fields
    old = {name: getattr(row, name) for name in fields}
    form = FollowUpSettingsForm(request.POST, instance=row, prefix="followups")
    if not form.is_valid():
        current = FlowVersion.objects.order_by("-number").first()
        return _page(request, source=current.source if current else EXAMPLE, settings_form=form,
                     status=400)  # fmt: skip
    row = form.save()
    changes = audit_diff(row, old)
    if changes:
        audit_record(actor=Actor.from_request(request), action="followup_settings.update",
                     instance=row, changes=changes)  # fmt: skip
    messages.success(request, _("Follow-up settings saved."))
    return redirect("dashboard:flows")


@member_required()
@require_POST
def followup_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a scheduled follow-up (editors who may see its conversation)."""
    member = request.membership  # type: ignore[attr-defined]
    if not selectors.can_edit(member):
        raise PermissionDenied
    followup = FollowUp.objects.select_related("conversation__contact").filter(pk=pk).first()
    if followup is None or not selectors.conversation_can_see(
        member=member, conversation_id=followup.conversation_id
    ):
        raise Http404
    if followup_cancel(followup=followup, actor=request.user, reason=""):  # type: ignore[arg-type]
        messages.success(request, _("Follow-up cancelled."))
    else:
        messages.info(request, _("This follow-up was not scheduled any more."))
    lead_id = followup.conversation.contact.lead_id
    if lead_id:
        return redirect("dashboard:lead", pk=lead_id)
    return redirect("dashboard:conversation", pk=followup.conversation_id)
