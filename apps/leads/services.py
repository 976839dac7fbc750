"""Leads: created from conversations, filled from what visitors say (merge rules by source),
scored, qualified, worked by the sales team. Every change is a LeadEvent with its source."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User
from apps.analytics.services import event_emit
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import reply_scope
from apps.leads.extraction import Extraction, extract, region_for_time_zone
from apps.leads.models import (
    SOURCE_RANK,
    Lead,
    LeadEvent,
    LeadSettings,
    Source,
    Stage,
)
from apps.leads.scoring import ScoreInput, score_compute

logger = logging.getLogger(__name__)

# Logical fields a lead is filled with. "budget" is {"amount", "currency"}; "timeline" is
# {"text", "date"}; the rest are strings.
TEXT_FIELDS = (
    "name",
    "email",
    "phone",
    "company_name",
    "role",
    "need",
    "preferred_channel",
    "preferred_time",
)
FIELDS = (*TEXT_FIELDS, "budget", "timeline")
_MAX_LENGTH = {
    "name": 200,
    "email": 254,
    "phone": 40,
    "company_name": 200,
    "role": 120,
    "need": 2000,
    "preferred_channel": 40,
    "preferred_time": 120,
}
# Stages a lead moves through by itself; later ones are set by people (or a booking).
_EARLY_STAGES = {Stage.NEW}
_CONTEXT_KEYS = re.compile(r"^(utm_\w+|referrer|ref|gclid|fbclid|campaign|user_type)$")


class LeadHooks:
    """What other apps plug into lead changes (registered in their AppConfig.ready).

    - `changed(lead_id, kind, old, new)`: after commit, when the score (`kind="score"`, ints)
      or the stage (`kind="stage"`, stage values) changed, e.g. to run flows.

    Hooks must not raise; a failing hook is logged and skipped (`strict`, set by the test
    suite, raises instead)."""

    strict = False
    changed: list[Callable[[int, str, Any, Any], None]] = []

    @classmethod
    def after_commit(cls, lead_id: int, kind: str, old: Any, new: Any) -> None:
        def run() -> None:
            for hook in cls.changed:
                try:
                    hook(lead_id, kind, old, new)
                except Exception:
                    if cls.strict:
                        raise
                    logger.exception("lead hook %s failed", getattr(hook, "__name__", hook))

        if cls.changed:
            transaction.on_commit(run)


def lead_settings_get() -> LeadSettings:
    """The current company's lead settings (created with defaults on first use)."""
    return LeadSettings.objects.get_or_create(pk=1)[0]


def _company_time_zone() -> str:
    from apps.channels.models import DEFAULT_TIME_ZONE, WidgetSettings

    row = WidgetSettings.objects.filter(pk=1).values_list("time_zone", flat=True).first()
    return row or DEFAULT_TIME_ZONE


def company_today(time_zone: str = "") -> date:
    """Today in the company's time zone (`time_zone` when the caller already read it)."""
    import zoneinfo

    zone = zoneinfo.ZoneInfo(time_zone or _company_time_zone())
    return timezone.now().astimezone(zone).date()


# --- Creating and reading ------------------------------------------------------------------


def _event(lead: Lead, kind: str, **fields: Any) -> LeadEvent:
    event = _event_new(lead, kind, **fields)
    event.save(force_insert=True)
    return event


def _event_new(
    lead: Lead,
    kind: str,
    *,
    field: str = "",
    old: str = "",
    new: str = "",
    source: str = "",
    actor: User | None = None,
    conversation_id: int | None = None,
    message_id: int | None = None,
    **data: Any,
) -> LeadEvent:
    """A lead's event, not saved yet (e.g. several saved in one INSERT)."""
    return LeadEvent(
        lead=lead,
        kind=kind,
        field=field,
        old=old[:2000],
        new=new[:2000],
        source=source,
        actor=actor if actor is not None and actor.pk else None,
        conversation_id=conversation_id,
        message_id=message_id,
        data=data,
    )


def lead_for_contact(*, contact: Contact, conversation: Conversation) -> Lead:
    """The contact's lead, created on first contact with where it came from (channel, first
    page, UTM parameters) and what the contact already told (e.g. a pre-chat form)."""
    if contact.lead_id is not None:
        return Lead.objects.get(pk=contact.lead_id)
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.lead_id is not None:
            return Lead.objects.get(pk=contact.lead_id)
        context = conversation.context or {}
        lead = Lead.objects.create(
            source_channel=conversation.channel,
            first_page=str(context.get("page") or context.get("url") or "")[:1000],
            context={k: v for k, v in context.items() if _CONTEXT_KEYS.match(str(k))},
            last_activity_at=timezone.now(),
        )
        contact.lead = lead
        contact.save(update_fields=["lead"])
        _event(lead, LeadEvent.Kind.CREATED, conversation_id=conversation.pk,
               channel=conversation.channel)  # fmt: skip
        event_emit(kind="lead.created", conversation_id=conversation.pk,
                   channel=conversation.channel, lead_id=lead.pk)  # fmt: skip
        known = {"name": contact.name, "email": contact.email, "phone": contact.phone}
        if any(known.values()):
            lead_update(lead=lead, values=known, source=Source.VISITOR,
                        conversation_id=conversation.pk)  # fmt: skip
    return lead


def _current(lead: Lead, field: str) -> Any:
    if field == "budget":
        if lead.budget_amount is None:
            return None
        return {"amount": lead.budget_amount, "currency": lead.budget_currency}
    if field == "timeline":
        if not lead.timeline and lead.timeline_date is None:
            return None
        return {"text": lead.timeline, "date": lead.timeline_date}
    return getattr(lead, field) or None


def _display(field: str, value: Any) -> str:
    if not value:
        return ""
    if field == "budget":
        return f"{value['amount']} {value.get('currency') or ''}".strip()
    if field == "timeline":
        when = value.get("date")
        return f"{value.get('text') or ''} ({when.isoformat()})" if when else value.get("text", "")
    return str(value)


def _normalize(field: str, value: Any) -> Any:
    """The value in its stored shape, or None when it is empty or unusable."""
    if value is None:
        return None
    if field == "budget":
        try:
            amount = Decimal(str(value.get("amount")))
        except (InvalidOperation, AttributeError, TypeError):
            return None
        if not amount.is_finite() or amount <= 0 or amount >= Decimal("1e14"):
            return None
        currency = str(value.get("currency") or "").upper()[:3]
        return {"amount": amount.quantize(Decimal("0.01")), "currency": currency}
    if field == "timeline":
        if not isinstance(value, dict):
            return None
        text = str(value.get("text") or "").strip()[:200]
        when = value.get("date")
        if isinstance(when, str):
            try:
                when = date.fromisoformat(when)
            except ValueError:
                when = None
        if isinstance(when, datetime):
            when = when.date()
        if not text and when is None:
            return None
        return {"text": text, "date": when if isinstance(when, date) else None}
    text = " ".join(str(value).split())[: _MAX_LENGTH[field]]
    if field == "email":
        text = text.lower()
    return text or None


def _assign(lead: Lead, field: str, value: Any) -> None:
    if field == "budget":
        lead.budget_amount = value["amount"] if value else None
        lead.budget_currency = value["currency"] if value else ""
    elif field == "timeline":
        lead.timeline = value["text"] if value else ""
        lead.timeline_date = value["date"] if value else None
    else:
        setattr(lead, field, value or "")


def lead_update(
    *,
    lead: Lead,
    values: dict[str, Any],
    source: str,
    actor: User | None = None,
    conversation_id: int | None = None,
    message_id: int | None = None,
    fill_only: frozenset[str] = frozenset(),
    today: date | None = None,
) -> list[str]:
    """Apply `values` (logical field -> value) from `source`, by the merge rule: a field is
    only replaced by a value from an equal or stronger source (Source), so a guess never
    overwrites what the visitor stated or confirmed, and a team member's edit stands. Fields
    in `fill_only` are only filled when empty. Each change is a LeadEvent; the lead is
    re-scored (`today`: the company's today, when the caller already read it). Returns the
    changed fields. A person's edit may also clear a field."""
    rank = SOURCE_RANK[Source(source)]
    changed: list[str] = []
    events: list[LeadEvent] = []
    sources = dict(lead.field_sources)
    reachable = bool(lead.email or lead.phone)
    for field, raw in values.items():
        if field not in FIELDS:
            raise ValueError(f"unknown lead field {field!r}")
        value = _normalize(field, raw)
        if value is None and source != Source.AGENT:
            continue
        current = _current(lead, field)
        if value == current:
            if value is not None and rank > SOURCE_RANK.get(sources.get(field, ""), 0):
                sources[field] = source  # the same value, now confirmed by a stronger source
            continue
        if current is not None and (
            field in fill_only or rank < SOURCE_RANK.get(sources.get(field, ""), 0)
        ):
            continue
        _assign(lead, field, value)
        if value is None:
            sources.pop(field, None)
        else:
            sources[field] = source
        changed.append(field)
        events.append(_event_new(
            lead,
            LeadEvent.Kind.FIELD,
            field=field,
            old=_display(field, current),
            new=_display(field, value),
            source=source,
            actor=actor,
            conversation_id=conversation_id,
            message_id=message_id,
        ))  # fmt: skip
    if sources != lead.field_sources:
        lead.field_sources = sources
        if not changed:
            lead.save(update_fields=["field_sources", "updated_at"])
    if changed:
        LeadEvent.objects.bulk_create(events)
        if not reachable and (lead.email or lead.phone):
            # The funnel's "lead": someone the team can now reach.
            event_emit(kind="lead.captured", conversation_id=conversation_id, lead_id=lead.pk,
                       channel=lead.source_channel)  # fmt: skip
        # The changed fields are saved with the new score, in one UPDATE.
        lead_rescore(lead=lead, conversation_id=conversation_id, today=today, save_lead=True)
        if "email" in changed and lead.booking_at is not None:
            _booking_invites_after_commit(lead.pk)
        if {"email", "phone"} & set(changed):
            lead_merge_duplicates(lead=lead)
    return changed


def _booking_invites_after_commit(lead_id: int) -> None:
    """A booked lead just gave an email: the calendar invitations that waited for it go out
    (once; apps.leads.booking)."""
    from apps.leads.tasks import booking_invite_task

    transaction.on_commit(lambda: booking_invite_task.delay(lead_id))


def _score_input(lead: Lead) -> ScoreInput:
    return ScoreInput(
        need=lead.need,
        budget_amount=lead.budget_amount,
        role=lead.role,
        company_name=lead.company_name,
        timeline=lead.timeline,
        timeline_date=lead.timeline_date,
        email=lead.email,
        phone=lead.phone,
        visitor_messages=lead.visitor_messages,
        booked=lead.booking_at is not None,
    )


def lead_rescore(
    *,
    lead: Lead,
    conversation_id: int | None = None,
    settings: LeadSettings | None = None,
    today: date | None = None,
    save_also: tuple[str, ...] = (),
    save_lead: bool = False,
) -> bool:
    """Score the lead with the company's weights; a lead still new that reaches the threshold
    becomes qualified (and the team is told). Returns whether the score changed; when it did,
    the fields in `save_also` (changed by the caller) are saved with it. `save_lead`: the
    caller changed the lead's fields, saved with the score whether or not it changed."""
    settings = settings or lead_settings_get()
    score = score_compute(
        _score_input(lead),
        weights=settings.weights,
        today=today or company_today(),
        timeline_full_days=settings.timeline_full_days,
    )
    changed = score.value != lead.score or score.breakdown != lead.score_breakdown
    old = lead.score
    if changed:
        lead.score, lead.score_breakdown = score.value, score.breakdown
    if save_lead:
        lead.save()
    elif changed:
        lead.save(update_fields=["score", "score_breakdown", *save_also, "updated_at"])
    if changed and old != score.value:
        _event(lead, LeadEvent.Kind.SCORE, old=str(old), new=str(score.value),
               conversation_id=conversation_id)  # fmt: skip
        LeadHooks.after_commit(lead.pk, "score", old, score.value)
    if score.value >= settings.qualify_threshold and lead.qualified_at is None:
        lead_qualify(lead=lead, conversation_id=conversation_id)
    return changed


def lead_qualify(*, lead: Lead, conversation_id: int | None = None) -> None:
    """Mark the lead qualified (once) and tell the team after commit: email, in-dashboard
    notification and the CRM webhook."""
    from apps.leads.tasks import lead_qualified_notify_task

    lead.qualified_at = timezone.now()
    fields = ["qualified_at", "updated_at"]
    old_stage = lead.stage
    if lead.stage in _EARLY_STAGES:
        lead.stage = Stage.QUALIFIED
        fields.append("stage")
    lead.save(update_fields=fields)
    _event(lead, LeadEvent.Kind.QUALIFIED, new=str(lead.score), conversation_id=conversation_id)
    if old_stage != lead.stage:
        _event(lead, LeadEvent.Kind.STAGE, field="stage", old=old_stage, new=lead.stage,
               conversation_id=conversation_id)  # fmt: skip
        LeadHooks.after_commit(lead.pk, "stage", str(old_stage), str(lead.stage))
    event_emit(kind="lead.qualified", conversation_id=conversation_id, lead_id=lead.pk,
               score=lead.score)  # fmt: skip
    lead_id = lead.pk
    transaction.on_commit(lambda: lead_qualified_notify_task.delay(lead_id))
    lead_changed_broadcast(lead)


def lead_merge_duplicates(*, lead: Lead) -> Lead:
    """Join this lead with an older lead of the same person (same email or phone): its
    contacts and events move to the older lead, each field keeps the value from the stronger
    source, and this lead is deleted. Returns the lead that remains."""
    match = Q()
    if lead.email:
        match |= Q(email=lead.email)
    if lead.phone:
        match |= Q(phone=lead.phone)
    if not match:
        return lead
    other = Lead.objects.filter(match).exclude(pk=lead.pk).order_by("created_at", "id").first()
    if other is None:
        return lead
    keep, drop = (other, lead) if other.created_at <= lead.created_at else (lead, other)
    keep = Lead.objects.select_for_update().get(pk=keep.pk)
    for field in FIELDS:
        value = _current(drop, field)
        source = drop.field_sources.get(field)
        if value is None or source is None:
            continue
        lead_update(lead=keep, values={field: value}, source=source)
    Contact.objects.filter(lead=drop).update(lead=keep)
    LeadEvent.objects.filter(lead=drop).update(lead=keep)
    keep.tags = sorted(set(keep.tags) | set(drop.tags))
    keep.notes = "\n\n".join(n for n in (keep.notes, drop.notes) if n)
    keep.visitor_messages = _visitor_messages(keep)
    if keep.owner_id is None:
        keep.owner_id = drop.owner_id
    keep.save()
    _event(keep, LeadEvent.Kind.MERGED, old=str(drop.pk), new=str(keep.pk))
    drop.delete()
    lead_rescore(lead=keep)
    return keep


def _visitor_messages(lead: Lead) -> int:
    return Message.objects.filter(
        conversation__contact__lead=lead, role=Message.Role.VISITOR
    ).count()


# --- Changes made by the team --------------------------------------------------------------


def lead_stage_set(*, lead: Lead, stage: str, actor: User | None = None) -> bool:
    """Move the lead to `stage` (any stage may follow any other: deals reopen)."""
    stage = Stage(stage)
    if lead.stage == stage:
        return False
    with transaction.atomic():
        old = lead.stage
        lead.stage = stage
        fields = ["stage", "updated_at"]
        qualified_now = stage == Stage.QUALIFIED and lead.qualified_at is None
        if qualified_now:
            lead.qualified_at = timezone.now()
            fields.append("qualified_at")
        lead.save(update_fields=fields)
        if qualified_now:  # qualified by a person: the analytics count it like a scored one
            event_emit(kind="lead.qualified", lead_id=lead.pk, score=lead.score, by="stage")
        _event(lead, LeadEvent.Kind.STAGE, field="stage", old=old, new=stage, actor=actor)
        event_emit(kind="lead.stage", lead_id=lead.pk, old=old, new=stage)
        LeadHooks.after_commit(lead.pk, "stage", str(old), str(stage))
    lead_changed_broadcast(lead)
    return True


def lead_owner_set(*, lead: Lead, owner: User | None, actor: User | None = None) -> bool:
    owner_id = owner.pk if owner is not None else None
    if lead.owner_id == owner_id:
        return False
    with transaction.atomic():
        old = str(lead.owner) if lead.owner_id else ""
        lead.owner_id = owner_id
        lead.save(update_fields=["owner", "updated_at"])
        _event(lead, LeadEvent.Kind.OWNER, field="owner", old=old,
               new=str(owner) if owner is not None else "", actor=actor)  # fmt: skip
    lead_changed_broadcast(lead)
    return True


def lead_note_add(*, lead: Lead, text: str, actor: User | None) -> LeadEvent | None:
    text = text.strip()
    if not text:
        return None
    with transaction.atomic():
        stamp = timezone.now().strftime("%Y-%m-%d %H:%M")
        author = str(actor) if actor is not None else ""
        line = f"[{stamp} {author}] {text}".replace("  ", " ")
        lead.notes = f"{lead.notes}\n{line}".strip()
        lead.save(update_fields=["notes", "updated_at"])
        event = _event(lead, LeadEvent.Kind.NOTE, new=text, actor=actor)
    lead_changed_broadcast(lead)
    return event


_TAG = re.compile(r"[^\w\- ]", re.UNICODE)


def tags_clean(raw: list[str] | str) -> list[str]:
    items = raw.split(",") if isinstance(raw, str) else raw
    cleaned = {_TAG.sub("", str(t)).strip().lower()[:50] for t in items}
    return sorted(t for t in cleaned if t)


def lead_tags_set(*, lead: Lead, tags: list[str] | str, actor: User | None = None) -> bool:
    new = tags_clean(tags)
    if new == sorted(lead.tags):
        return False
    with transaction.atomic():
        old = sorted(lead.tags)
        lead.tags = new
        lead.save(update_fields=["tags", "updated_at"])
        _event(lead, LeadEvent.Kind.TAGS, field="tags", old=", ".join(old), new=", ".join(new),
               actor=actor)  # fmt: skip
    lead_changed_broadcast(lead)
    return True


def lead_fields_edit(*, lead: Lead, values: dict[str, Any], actor: User | None) -> list[str]:
    """A team member's edit of the lead's fields: stands over every other source."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        changed = lead_update(lead=lead, values=values, source=Source.AGENT, actor=actor)
    if changed:
        lead_changed_broadcast(lead)
    return changed


def lead_changed_broadcast(lead: Lead) -> None:
    """Tell open dashboards the lead changed (after commit)."""
    from apps.leads.realtime import inbox_publish

    inbox_publish("lead.changed", lead_id=lead.pk)


# --- From the visitor's messages -----------------------------------------------------------

_NEED_CUE = re.compile(
    r"\b(necesito|necesitamos|busco|buscamos|estoy buscando|estamos buscando|me interesa|"
    r"nos interesa|quisiera|quiero cotizar|i need|we need|i'm looking for|im looking for|"
    r"we're looking for|looking for|interested in|i want to buy|i'd like to buy)\b",
    re.IGNORECASE,
)
_NOT_NEED = re.compile(
    r"\b(hablar con|talk to|speak (to|with)|una persona|un humano|a human|agendar|book|"
    r"schedule|ayuda$)\b",
    re.IGNORECASE,
)
_PREFERRED_CHANNEL = re.compile(
    r"\b(?:por|via|vía|by|on|en)\s+(whats\s?app|wa|telegram|tel[eé]fono|llamada|phone|call|"
    r"e-?mail|correo|sms)\b",
    re.IGNORECASE,
)
_CHANNEL_NAMES = {
    "whatsapp": "whatsapp", "wa": "whatsapp", "telegram": "telegram", "telefono": "phone",
    "llamada": "phone", "phone": "phone", "call": "phone", "email": "email", "e-mail": "email",
    "correo": "email", "sms": "sms",
}  # fmt: skip
_PREFERRED_TIME = re.compile(
    r"\b(por la (mañana|manana|tarde|noche)|in the (morning|afternoon|evening)|"
    r"despu[eé]s de las \d{1,2}(:\d\d)?|antes de las \d{1,2}(:\d\d)?|"
    r"after \d{1,2}(:\d\d)?\s?(am|pm)?|before \d{1,2}(:\d\d)?\s?(am|pm)?|"
    r"entre las \d{1,2}(:\d\d)? y las \d{1,2}(:\d\d)?|between \d{1,2}(:\d\d)?\s?(am|pm)? and "
    r"\d{1,2}(:\d\d)?\s?(am|pm)?)",
    re.IGNORECASE,
)


def _need_from(text: str) -> str:
    match = _NEED_CUE.search(text)
    if not match or _NOT_NEED.search(text[match.start() :]):
        return ""
    sentence = re.split(r"(?<=[.!?¿¡])\s+|\n", text[match.start() :], maxsplit=1)[0]
    sentence = sentence.strip(" .!?¿¡")
    return sentence if len(sentence.split()) >= 3 else ""


def extraction_values(found: Extraction, text: str) -> dict[str, Any]:
    """The lead fields an exact reading of one visitor message gives."""
    values: dict[str, Any] = {
        "email": found.email,
        "phone": found.phone,
        "name": found.name,
        "role": found.role,
        "company_name": found.company,
    }
    if found.budget is not None:
        values["budget"] = {"amount": found.budget.amount, "currency": found.budget.currency}
    if found.timeline is not None:
        values["timeline"] = {"text": found.timeline.text, "date": found.timeline.date}
    channel = _PREFERRED_CHANNEL.search(text)
    if channel:
        key = channel.group(1).lower().replace(" ", "").replace("é", "e")
        values["preferred_channel"] = _CHANNEL_NAMES.get(key, key)
    when = _PREFERRED_TIME.search(text)
    if when:
        values["preferred_time"] = when.group(0)
    return {k: v for k, v in values.items() if v}


def text_values(text: str, zone: str = "") -> dict[str, Any]:
    """The lead fields the exact extractors read in `text`, anchored on the company's today
    and region (`zone`: its time zone, when the caller already read it)."""
    zone = zone or _company_time_zone()
    found = extract(text, today=company_today(zone), default_region=region_for_time_zone(zone))
    return extraction_values(found, text)


def _lead_locked(conversation: Conversation) -> Lead:
    """The conversation's lead, locked for this transaction (created on first contact)."""
    lead = (
        Lead.objects.select_for_update(of=("self",))
        .filter(contacts__pk=conversation.contact_id)
        .first()
    )
    if lead is None:
        contact = Contact.objects.get(pk=conversation.contact_id)
        lead_id = lead_for_contact(contact=contact, conversation=conversation).pk
        lead = Lead.objects.select_for_update().get(pk=lead_id)
    return lead


@dataclass(frozen=True)
class Processed:
    lead: Lead
    changed: list[str]


def lead_message_process(*, message: Message) -> Processed:
    """After a visitor message is stored: find or create the lead, read what the message
    says exactly (email, phone, amounts, dates, name, role, company, need, how and when to
    call back), apply it with source "extractor", count the engagement and re-score.
    Idempotent: processing the same message again changes nothing."""
    conversation = message.conversation
    with transaction.atomic():
        lead = _lead_locked(conversation)
        zone = _company_time_zone()
        values = text_values(message.text, zone=zone)
        need = _need_from(message.text)
        if need:
            values["need"] = need
        # Saved with the lead's other changes below (one UPDATE where there are some).
        lead.visitor_messages = _visitor_messages(lead)
        lead.last_activity_at = timezone.now()
        activity = ("visitor_messages", "last_activity_at")
        today = company_today(zone)
        changed = lead_update(
            lead=lead,
            values=values,
            source=Source.EXTRACTOR,
            conversation_id=conversation.pk,
            message_id=message.pk,
            fill_only=frozenset({"need"}),
            today=today,
        )
        if not changed and not lead_rescore(
            lead=lead, conversation_id=conversation.pk, today=today, save_also=activity
        ):
            lead.save(update_fields=[*activity, "updated_at"])
        if {"email", "phone"} & set(changed):
            # A new email or phone may have merged this lead with another one
            # (lead_merge_duplicates, which may delete this one): go on with the lead left.
            lead = Lead.objects.get(contacts__pk=conversation.contact_id)
    lead_changed_broadcast(lead)
    return Processed(lead=lead, changed=changed)


# The model's structured reading of a conversation (JSON schema, strict: every key present).
MODEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": ["string", "null"]},
        "company_name": {"type": ["string", "null"]},
        "role": {"type": ["string", "null"]},
        "need": {"type": ["string", "null"]},
        "budget_amount": {"type": ["number", "null"]},
        "budget_currency": {"type": ["string", "null"]},
        "timeline": {"type": ["string", "null"]},
        "preferred_channel": {"type": ["string", "null"]},
        "preferred_time": {"type": ["string", "null"]},
    },
    "required": [
        "name", "company_name", "role", "need", "budget_amount", "budget_currency",
        "timeline", "preferred_channel", "preferred_time",
    ],
}  # fmt: skip

MODEL_INSTRUCTIONS = (
    "Read the sales conversation below and return what the visitor said about themselves: "
    "name, company, role/job title, what they need (one short sentence), budget (number and "
    "ISO 4217 currency), timeline (as they said it), preferred contact channel and time. Use "
    "null for anything the visitor did not say. Never guess."
)


def lead_model_values(data: dict[str, Any]) -> dict[str, Any]:
    """Lead fields from the model's structured output (MODEL_SCHEMA)."""
    values: dict[str, Any] = {}
    for field in ("name", "company_name", "role", "need", "preferred_channel", "preferred_time"):
        if isinstance(data.get(field), str) and data[field].strip():
            values[field] = data[field]
    amount = data.get("budget_amount")
    if isinstance(amount, int | float) and not isinstance(amount, bool) and amount > 0:
        currency = data.get("budget_currency")
        values["budget"] = {
            "amount": str(amount),
            "currency": currency if isinstance(currency, str) and len(currency) == 3 else "",
        }
    if isinstance(data.get("timeline"), str) and data["timeline"].strip():
        values["timeline"] = {"text": data["timeline"], "date": None}
    return values


def lead_model_apply(*, message: Message, data: dict[str, Any]) -> list[str]:
    """Apply the model's reading with source "model": it fills gaps and never overwrites what
    the visitor stated or confirmed."""
    conversation = message.conversation
    with transaction.atomic():
        lead = _lead_locked(conversation)
        changed = lead_update(
            lead=lead,
            values=lead_model_values(data),
            source=Source.MODEL,
            conversation_id=conversation.pk,
            message_id=message.pk,
        )
    if changed:
        lead_changed_broadcast(lead)
    return changed


# --- What the assistant still needs to ask ------------------------------------------------


def lead_known_fields(lead: Lead) -> frozenset[str]:
    """Qualification fields (apps.assistants.industry_templates) the lead already answers."""
    known = set()
    if lead.need:
        known.add("need")
    if lead.budget_amount is not None:
        known.add("budget")
    if lead.timeline or lead.timeline_date:
        known.add("timeline")
    if lead.role:
        known.add("authority")
    return frozenset(known)


def lead_for_conversation(conversation_id: int) -> Lead | None:
    """The lead of the conversation's contact. The reply pipeline asks this several times per
    message, so it is one plain join (the ORM's lookup through two reverse relations cost the
    worker about twice the CPU)."""
    rows = Lead.objects.raw(_LEAD_FOR_CONVERSATION_SQL, [conversation_id])
    return next(iter(rows), None)


def lead_for_reply(conversation_id: int) -> Lead | None:
    """`lead_for_conversation` read once for the hooks of the reply being generated (the
    booking check, the known fields and the prompt's lead state each want it; the `received`
    hook leaves the lead it just updated). Outside a reply task: read each time."""
    scope = reply_scope()
    key = f"lead:{conversation_id}"
    if key not in scope:
        scope[key] = lead_for_conversation(conversation_id)
    lead: Lead | None = scope[key]
    return lead


def lead_for_reply_keep(conversation_id: int, lead: Lead) -> None:
    """The reply's hooks use `lead`, just updated, as the conversation's lead."""
    reply_scope()[f"lead:{conversation_id}"] = lead


def lead_for_reply_forget(lead: Lead) -> None:
    """Another copy of `lead` was saved: the reply's hooks read it again (post_save)."""
    scope = reply_scope()
    for key, kept in list(scope.items()):
        if key.startswith("lead:") and kept is not None and kept.pk == lead.pk and kept is not lead:
            del scope[key]


_LEAD_FOR_CONVERSATION_SQL = (
    "SELECT l.* FROM leads_lead l"
    " JOIN conversations_contact c ON c.lead_id = l.id"
    " JOIN conversations_conversation v ON v.contact_id = c.id"
    " WHERE v.id = %s ORDER BY l.id LIMIT 1"
)


def lead_asked_record(*, lead: Lead, field: str) -> None:
    """Remember the assistant asked for `field` (it never asks twice)."""
    if field and field not in lead.asked:
        Lead.objects.filter(pk=lead.pk).update(asked=[*lead.asked, field])
        lead.asked = [*lead.asked, field]


def lead_notes_set(*, lead: Lead, notes: str, actor: User | None = None) -> bool:
    """Replace the lead's notes (the API's PATCH); `lead_note_add` appends one signed note."""
    notes = notes.strip()
    if notes == lead.notes:
        return False
    with transaction.atomic():
        old = lead.notes
        lead.notes = notes
        lead.save(update_fields=["notes", "updated_at"])
        _event(lead, LeadEvent.Kind.NOTE, field="notes", old=old, new=notes, actor=actor)
    lead_changed_broadcast(lead)
    return True
