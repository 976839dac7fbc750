"""Dashboard: the sales inbox — the leads list (filters, search, sorting, CSV exports), a
lead's page (fields, owner, stage, tags, notes, score, timeline, transcript across channels),
the handoff queue and a conversation's page (take, hand back, close, reply), live through
`apps.leads.consumers.InboxConsumer` and `static/dashboard/inbox.js`.

Pages answer `?fragment=<part>` with that part's HTML only: the script re-fetches parts when
an inbox event says something changed. Viewers read everything and change nothing (every
POST answers 403); agents work their own leads, the queue and the conversations they have.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import Membership, Role, User
from apps.accounts.permissions import member_required
from apps.conversations.models import Channel, Conversation
from apps.followups.services import followups_for_lead
from apps.leads import exports, selectors
from apps.leads.handoff import (
    HandoffConflict,
    agent_message_send,
    conversation_close,
    conversation_release,
    conversation_take,
)
from apps.leads.models import Lead, LeadEvent, Source, Stage
from apps.leads.scoring import PARTS, reason_text
from apps.leads.services import (
    lead_fields_edit,
    lead_note_add,
    lead_owner_set,
    lead_stage_set,
    lead_tags_set,
)

EDITORS = (Role.OWNER, Role.ADMIN, Role.AGENT)

FIELD_LABELS = {
    "name": gettext_lazy("Name"),
    "email": gettext_lazy("Email"),
    "phone": gettext_lazy("Phone"),
    "company_name": gettext_lazy("Company"),
    "role": gettext_lazy("Role"),
    "need": gettext_lazy("Need"),
    "preferred_channel": gettext_lazy("Preferred channel"),
    "preferred_time": gettext_lazy("Preferred time"),
    "budget": gettext_lazy("Budget"),
    "timeline": gettext_lazy("Timeline"),
    "stage": gettext_lazy("Stage"),
    "owner": gettext_lazy("Owner"),
    "tags": gettext_lazy("Tags"),
    "notes": gettext_lazy("Notes"),
}
PART_LABELS = {
    "need": gettext_lazy("Need"),
    "budget": gettext_lazy("Budget"),
    "authority": gettext_lazy("Authority"),
    "timeline": gettext_lazy("Timeline"),
    "engagement": gettext_lazy("Engagement"),
}
HANDOFF_LABELS = {
    "requested": gettext_lazy("Asked for a person"),
    "taken": gettext_lazy("A team member took the conversation"),
    "released": gettext_lazy("Handed back to the assistant"),
    "closed": gettext_lazy("Conversation closed"),
    "unanswered": gettext_lazy("Nobody took the conversation in time"),
}


FOLLOWUP_LABELS = {
    "scheduled": gettext_lazy("Follow-up scheduled"),
    "sent": gettext_lazy("Follow-up sent"),
    "cancelled": gettext_lazy("Follow-up cancelled"),
    "skipped": gettext_lazy("Follow-up skipped"),
    "failed": gettext_lazy("Follow-up failed"),
    "unknown": gettext_lazy("Follow-up outcome unknown"),
}


def _member(request: HttpRequest) -> Membership:
    member: Membership = request.membership  # type: ignore[attr-defined]
    member.user = request.user  # type: ignore[assignment]  # saves a query per use
    return member


def _fragment(request: HttpRequest, templates: dict[str, str], context: dict[str, Any]) -> Any:
    """The part named by `?fragment=`, or None for the whole page (unknown parts: 404)."""
    name = request.GET.get("fragment")
    if not name:
        return None
    if name not in templates:
        raise Http404
    return render(request, templates[name], context)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


# --- The leads list ------------------------------------------------------------------------


@require_GET
@never_cache
@member_required()
def leads_list(request: HttpRequest) -> HttpResponse:
    member = _member(request)
    filters = selectors.lead_filters_parse(request.GET)
    page = selectors.leads_page(member=member, filters=filters)
    channel_labels = dict(Channel.choices)
    for row in page.rows:
        row.channel_label = channel_labels.get(row.source_channel, row.source_channel)  # type: ignore[attr-defined]
    query = selectors.lead_filters_query(filters, page=1)
    manager = selectors.is_manager(member)
    context = {
        "filters": filters,
        "page": page,
        "query": query,
        "sort_links": {
            key: selectors.lead_filters_query(
                filters,
                sort=key,
                descending=not filters.descending if filters.sort == key else key != "name",
                page=1,
            )
            for key in selectors.SORTS
        },
        "previous_query": selectors.lead_filters_query(filters, page=filters.page - 1)
        if filters.page > 1
        else None,
        "next_query": selectors.lead_filters_query(filters, page=filters.page + 1)
        if page.has_next
        else None,
        "stages": Stage.choices,
        "channels": Channel.choices,
        "owners": selectors.members_assignable() if manager or member.role == Role.VIEWER else [],
        "is_agent": member.role == Role.AGENT,
    }
    fragment = _fragment(request, {"rows": "dashboard/inbox/_lead_results.html"}, context)
    return fragment or render(request, "dashboard/inbox/leads.html", context)


@require_GET
@never_cache
@member_required()  # type: ignore[arg-type]  # typed for HttpResponse; streams are fine
def leads_export(request: HttpRequest) -> HttpResponseBase:
    member = _member(request)
    filters = selectors.lead_filters_parse(request.GET)
    leads = selectors.leads_for_export(member=member, filters=filters)
    return exports.leads_csv(request=request, leads=leads)


@require_GET
@never_cache
@member_required()  # type: ignore[arg-type]  # typed for HttpResponse; streams are fine
def conversations_export(request: HttpRequest) -> HttpResponseBase:
    """Transcripts of the conversations of the listed leads (one row per message)."""
    member = _member(request)
    filters = selectors.lead_filters_parse(request.GET)
    lead_id = request.GET.get("lead", "")
    leads = None
    if lead_id.isdigit():
        leads = selectors.leads_visible(member=member).filter(pk=int(lead_id))
    elif filters.active or member.role == Role.AGENT:
        leads = selectors.leads_for_export(member=member, filters=filters)
    conversations = selectors.conversations_for_export(member=member, leads=leads)
    return exports.conversations_csv(request=request, conversations=conversations)


# --- One lead ------------------------------------------------------------------------------


class LeadForm(forms.Form):
    name = forms.CharField(label=FIELD_LABELS["name"], max_length=200, required=False)
    email = forms.EmailField(label=FIELD_LABELS["email"], required=False)
    phone = forms.CharField(label=FIELD_LABELS["phone"], max_length=40, required=False)
    company_name = forms.CharField(label=FIELD_LABELS["company_name"], max_length=200,
                                   required=False)  # fmt: skip
    role = forms.CharField(label=FIELD_LABELS["role"], max_length=120, required=False)
    need = forms.CharField(
        label=FIELD_LABELS["need"],
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    budget_amount = forms.DecimalField(
        label=FIELD_LABELS["budget"], required=False, min_value=Decimal("0.01"),
        max_digits=16, decimal_places=2,
    )  # fmt: skip
    budget_currency = forms.CharField(label=gettext_lazy("Currency"), max_length=3,
                                      required=False)  # fmt: skip
    timeline = forms.CharField(label=FIELD_LABELS["timeline"], max_length=200, required=False)
    timeline_date = forms.DateField(
        label=gettext_lazy("Timeline date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    preferred_channel = forms.CharField(label=FIELD_LABELS["preferred_channel"], max_length=40,
                                        required=False)  # fmt: skip
    preferred_time = forms.CharField(label=FIELD_LABELS["preferred_time"], max_length=120,
                                     required=False)  # fmt: skip

    TEXT = ("name", "email", "phone", "company_name", "role", "need", "preferred_channel",
            "preferred_time")  # fmt: skip

    @classmethod
    def for_lead(cls, lead: Lead, data: Any = None) -> LeadForm:
        initial = {name: getattr(lead, name) for name in cls.TEXT}
        initial.update(
            budget_amount=lead.budget_amount,
            budget_currency=lead.budget_currency,
            timeline=lead.timeline,
            timeline_date=lead.timeline_date,
        )
        return cls(data, initial=initial, prefix="lead")

    def changed_values(self) -> dict[str, Any]:
        """Only what the person changed, as logical lead fields: sending unchanged values
        would mark them all as set by a team member, and the assistant could no longer
        improve them."""
        data, changed = self.cleaned_data, set(self.changed_data)
        values: dict[str, Any] = {name: data[name] for name in self.TEXT if name in changed}
        if {"budget_amount", "budget_currency"} & changed:
            values["budget"] = (
                {"amount": data["budget_amount"], "currency": data["budget_currency"]}
                if data["budget_amount"]
                else None
            )
        if {"timeline", "timeline_date"} & changed:
            values["timeline"] = (
                {"text": data["timeline"], "date": data["timeline_date"]}
                if data["timeline"] or data["timeline_date"]
                else None
            )
        return values


def _lead_or_404(member: Membership, pk: int) -> Lead:
    lead = selectors.lead_get(member=member, pk=pk)
    if lead is None:
        raise Http404
    return lead


def _score_rows(lead: Lead) -> list[dict[str, Any]]:
    rows = []
    for part in PARTS:
        entry = lead.score_breakdown.get(part) or {}
        rows.append(
            {
                "part": part,
                "label": PART_LABELS[part],
                "points": entry.get("points", 0),
                "max": entry.get("max", 0),
                "reason": reason_text(entry["reason"]) if entry.get("reason") else "",
            }
        )
    return rows


def _event_rows(events: list[LeadEvent]) -> list[dict[str, Any]]:
    sources = dict(Source.choices)
    stages = dict(Stage.choices)
    rows = []
    for event in events:
        old, new = event.old, event.new
        if event.kind == LeadEvent.Kind.STAGE:
            old, new = str(stages.get(old, old)), str(stages.get(new, new))
        detail = ""
        if event.kind == LeadEvent.Kind.HANDOFF:
            detail = str(HANDOFF_LABELS.get(new, new))
            old, new = "", ""
        elif event.kind == LeadEvent.Kind.FOLLOWUP:
            detail = str(FOLLOWUP_LABELS.get(new, new))
            reason = (event.data or {}).get("reason") or (event.data or {}).get("due_at") or ""
            old, new = "", str(reason)
        elif event.kind == LeadEvent.Kind.FLOW:
            detail = str((event.data or {}).get("trigger") or "")
            old = ""
        rows.append(
            {
                "event": event,
                "label": event.get_kind_display(),
                "field": FIELD_LABELS.get(event.field, event.field),
                "old": old,
                "new": new,
                "detail": detail,
                "source": sources.get(event.source, event.source),
            }
        )
    return rows


def _lead_context(request: HttpRequest, member: Membership, lead: Lead) -> dict[str, Any]:
    parts, truncated = selectors.lead_transcript(lead)
    editable = selectors.can_edit(member)
    manager = selectors.is_manager(member)
    return {
        "lead": lead,
        "editable": editable,
        "manager": manager,
        "score_rows": _score_rows(lead),
        "events": _event_rows(selectors.lead_events(lead)),
        "transcript": parts,
        "transcript_truncated": truncated,
        "stages": Stage.choices,
        "owners": selectors.members_assignable() if manager else [],
        "conversation_ids": ",".join(str(p.conversation.pk) for p in parts),
        "followups": followups_for_lead(lead.pk),
    }


@require_GET
@never_cache
@member_required()
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = _member(request)
    lead = _lead_or_404(member, pk)
    context = _lead_context(request, member, lead)
    fragment = _fragment(request, {"live": "dashboard/inbox/_lead_live.html"}, context)
    if fragment:
        return fragment
    context["form"] = LeadForm.for_lead(lead) if context["editable"] else None
    return render(request, "dashboard/inbox/lead.html", context)


LEAD_ACTIONS = ("fields", "stage", "owner", "tags", "note")


@require_POST
@member_required(*EDITORS)
def lead_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in LEAD_ACTIONS:
        raise Http404
    member = _member(request)
    lead = _lead_or_404(member, pk)
    user: User = request.user  # type: ignore[assignment]
    url = reverse("dashboard:lead", args=[lead.pk])
    if action == "fields":
        form = LeadForm.for_lead(lead, request.POST)
        if not form.is_valid():
            context = _lead_context(request, member, lead)
            context["form"] = form
            return render(request, "dashboard/inbox/lead.html", context, status=400)
        changed = lead_fields_edit(lead=lead, values=form.changed_values(), actor=user)
        if changed:
            messages.success(request, _("Saved."))
        merged = _merged_into(lead.pk)
        if merged is not None:
            messages.info(request, _("This lead was joined with an older lead of the same person."))
            url = reverse("dashboard:lead", args=[merged])
    elif action == "stage":
        stage = request.POST.get("stage", "")
        if stage not in Stage.values:
            return HttpResponse(_("Unknown stage."), status=400)
        lead_stage_set(lead=lead, stage=stage, actor=user)
    elif action == "owner":
        if not selectors.is_manager(member):
            raise PermissionDenied
        owner_id = request.POST.get("owner", "")
        owner = None
        if owner_id:
            eligible = {m.user_id: m.user for m in selectors.members_assignable()}
            if not owner_id.isdigit() or int(owner_id) not in eligible:
                return HttpResponse(_("Choose a team member who works leads."), status=400)
            owner = eligible[int(owner_id)]
        lead_owner_set(lead=lead, owner=owner, actor=user)
    elif action == "tags":
        lead_tags_set(lead=lead, tags=request.POST.get("tags", ""), actor=user)
    elif action == "note":
        note = lead_note_add(lead=lead, text=request.POST.get("text", "")[:5000], actor=user)
        if note is None:
            messages.error(request, _("Write the note first."))
    return redirect(url)


def _merged_into(lead_id: int) -> int | None:
    """The lead `lead_id` was merged into, when an edit made it a duplicate."""
    if Lead.objects.filter(pk=lead_id).exists():
        return None
    event = LeadEvent.objects.filter(kind=LeadEvent.Kind.MERGED, old=str(lead_id)).first()
    return int(event.new) if event is not None and event.new.isdigit() else None


# --- The queue and a conversation ------------------------------------------------------------


@require_GET
@never_cache
@member_required()
def inbox(request: HttpRequest) -> HttpResponse:
    member = _member(request)
    context = {
        "queue": selectors.queue_get(member=member),
        "manager": selectors.is_manager(member) or member.role == Role.VIEWER,
    }
    fragment = _fragment(request, {"queue": "dashboard/inbox/_queue.html"}, context)
    return fragment or render(request, "dashboard/inbox/inbox.html", context)


def _conversation_or_404(member: Membership, pk: int) -> Conversation:
    conversation = selectors.conversation_get(member=member, pk=pk)
    if conversation is None:
        raise Http404
    return conversation


def _actions(member: Membership, conversation: Conversation) -> dict[str, bool]:
    """What `member` may do with the conversation now (the buttons shown)."""
    if not selectors.can_edit(member):
        return {}
    manager = selectors.is_manager(member)
    mode, Mode = conversation.mode, Conversation.Mode
    mine = mode == Mode.HUMAN and conversation.agent_id == member.user_id
    someone_else = mode == Mode.HUMAN and not mine and conversation.agent_id is not None
    can_act = not someone_else or manager
    return {
        "take": mode != Mode.HUMAN or conversation.agent_id is None,
        "takeover": someone_else and manager,
        "release": mode in {Mode.HUMAN, Mode.PENDING_HUMAN} and can_act,
        "close": mode != Mode.CLOSED and can_act,
        "reply": not someone_else,
    }


@require_GET
@never_cache
@member_required()
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = _member(request)
    conversation = _conversation_or_404(member, pk)
    after = request.GET.get("after", "")
    context: dict[str, Any] = {
        "conversation": conversation,
        "lead": conversation.contact.lead,
        "actions": _actions(member, conversation),
        "messages_list": selectors.conversation_messages(
            conversation, after=int(after) if after.isdigit() else 0
        ),
    }
    fragment = _fragment(
        request,
        {
            "messages": "dashboard/inbox/_messages.html",
            "status": "dashboard/inbox/_conversation_status.html",
        },
        context,
    )
    return fragment or render(request, "dashboard/inbox/conversation.html", context)


CONVERSATION_ACTIONS = ("take", "takeover", "release", "close", "reply")


@require_POST
@member_required(*EDITORS)
def conversation_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in CONVERSATION_ACTIONS:
        raise Http404
    member = _member(request)
    conversation = _conversation_or_404(member, pk)
    allowed = _actions(member, conversation)
    user: User = request.user  # type: ignore[assignment]
    error = ""
    status = 200
    if action == "takeover" and not selectors.is_manager(member):
        raise PermissionDenied
    if action in {"release", "close"} and not allowed.get(action):
        error, status = _("Another team member has this conversation."), 409
    elif action == "reply" and not request.POST.get("text", "").strip():
        error, status = _("Write a message first."), 400
    else:
        try:
            if action in {"take", "takeover"}:
                conversation_take(conversation=conversation, agent=user, force=action == "takeover")
            elif action == "release":
                conversation_release(conversation=conversation, actor=user)
            elif action == "close":
                conversation_close(conversation=conversation, actor=user)
            else:
                agent_message_send(conversation=conversation, agent=user,
                                   text=request.POST["text"])  # fmt: skip
        except HandoffConflict:
            error, status = _conflict_text(conversation, sending=action == "reply"), 409
    if _wants_json(request):
        return JsonResponse({"ok": not error, "error": error}, status=status)
    if error:
        messages.error(request, error)
    return redirect("dashboard:conversation", pk=conversation.pk)


def _conflict_text(conversation: Conversation, *, sending: bool) -> str:
    conversation.refresh_from_db(fields=["agent"])
    name = str(conversation.agent) if conversation.agent_id else _("Another team member")
    if sending:
        return _(
            "%(name)s has this conversation: your message was not sent. Ask them, or an owner "
            "or admin, to hand it over."
        ) % {"name": name}
    return _("%(name)s has this conversation. An owner or admin can take it over.") % {"name": name}
