"""Follow-ups: messages the assistant sends later, on the conversation's channel.

Scheduled by flows (a rule triggered by N hours/days without activity, or a `follow_up`
action), sent by `followup_send` when due:

- never during the company's quiet hours (its time zone): moved to the end of them;
- never to a contact who opted out ("STOP", "BAJA", "no más mensajes") or is unreachable;
- cancelled when the visitor writes first, or by a team member;
- at most once: the follow-up is claimed (`sending`) in a committed transaction before
  anything goes out; a worker that dies mid-send leaves it `sending`, and the next run marks
  it `unknown` instead of sending it again;
- web: stored in the conversation (the widget shows it at the next visit) and emailed when the
  visitor's email is known; Telegram: a message; WhatsApp: a message inside the 24-hour
  window, the company's approved template outside it (skipped without one).

Every step is a LeadEvent on the lead's timeline.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.conversations.models import Contact, Conversation, Message
from apps.flows.spec import fold
from apps.followups.models import FollowUp, FollowUpSettings
from apps.leads.models import LeadEvent

logger = logging.getLogger(__name__)

# A follow-up claimed this long ago and not settled: its worker died mid-send.
STALE_SENDING = timedelta(minutes=10)
# Inactivity older than this when a rule first sees it is not followed up (a rule added
# today does not write to every conversation of the last year).
INACTIVITY_LOOKBACK = timedelta(days=7)
BATCH = 200

# Asking for no more messages, in Spanish or English: the whole message, or a clear phrase.
_OPT_OUT_WORDS = re.compile(
    r"^\W*(stop|stop all|baja|darme de baja|unsubscribe|cancelar suscripcion|alto|parar)\W*$"
)
_OPT_OUT_PHRASES = re.compile(
    r"\b(no mas mensajes|no me (escriban|escribas|manden|envien) mas|"
    r"dejen de (escribirme|enviarme|mandarme)|deja de (escribirme|enviarme|mandarme)|"
    r"ya no me (escriban|escribas|manden|envien)|no quiero (recibir )?mas mensajes|"
    r"dar(me)? de baja|stop (messaging|texting|sending)|stop messages|"
    r"(don'?t|do not) (message|text|contact|write to) me|no more messages|unsubscribe me)\b"
)


def wants_no_more_messages(text: str) -> bool:
    folded = " ".join(fold(text).split())
    return bool(_OPT_OUT_WORDS.match(folded) or _OPT_OUT_PHRASES.search(folded))


def followup_settings_get() -> FollowUpSettings:
    return FollowUpSettings.objects.get_or_create(pk=1)[0]


def _time_zone(settings: FollowUpSettings) -> zoneinfo.ZoneInfo:
    from apps.leads.services import _company_time_zone

    return zoneinfo.ZoneInfo(settings.time_zone or _company_time_zone())


def quiet_until(at: datetime, settings: FollowUpSettings) -> datetime | None:
    """The end of the quiet hours `at` falls in (in the company's time zone), or None when
    `at` is outside them. A start after the end spans midnight (21:00 to 08:00)."""
    start, end = settings.quiet_start, settings.quiet_end
    if start == end:
        return None
    zone = _time_zone(settings)
    local = at.astimezone(zone)
    now = local.time()
    if start < end:
        inside = start <= now < end
        day = local.date()
    else:
        inside = now >= start or now < end
        day = local.date() + timedelta(days=1) if now >= start else local.date()
    if not inside:
        return None
    return datetime.combine(day, end, tzinfo=zone)


def _lead_event(conversation: Conversation, new: str, **data: Any) -> None:
    from apps.leads.services import lead_for_conversation

    lead = lead_for_conversation(conversation.pk)
    if lead is not None:
        LeadEvent.objects.create(
            lead=lead, kind=LeadEvent.Kind.FOLLOWUP, new=new, conversation_id=conversation.pk,
            actor=data.pop("actor", None), data=data,
        )  # fmt: skip
        from apps.leads.realtime import inbox_publish

        inbox_publish("lead.changed", lead_id=lead.pk, conversation_id=conversation.pk)


def followup_schedule(
    *,
    conversation: Conversation,
    text: str,
    due_at: datetime,
    key: str,
    source: str,
    template: str = "",
    rule_key: str = "",
    silence_from: datetime | None = None,
) -> FollowUp | None:
    """Schedule a follow-up once per `key` (the same key again returns the existing one).
    None when the contact opted out or is unreachable."""
    contact = Contact.objects.filter(pk=conversation.contact_id).first()
    if contact is None or contact.opted_out_at is not None or contact.unreachable:
        return None
    existing = FollowUp.objects.filter(key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            followup = FollowUp.objects.create(
                conversation=conversation, key=key[:200], source=source, rule_key=rule_key,
                text=text, template=template, due_at=due_at, silence_from=silence_from,
            )  # fmt: skip
    except IntegrityError:
        return FollowUp.objects.get(key=key[:200])
    _lead_event(conversation, "scheduled", followup_id=followup.pk, due_at=due_at.isoformat(),
                source=source, rule=rule_key)  # fmt: skip
    return followup


def followup_cancel(*, followup: FollowUp, actor: User | None, reason: str = "") -> bool:
    """Cancel a scheduled follow-up (a team member, or the visitor writing first)."""
    changed = FollowUp.objects.filter(pk=followup.pk, status=FollowUp.Status.SCHEDULED).update(
        status=FollowUp.Status.CANCELLED,
        reason=reason or "cancelled by a team member",
        cancelled_by=actor,
        updated_at=timezone.now(),
    )
    if changed:
        followup.refresh_from_db()
        _lead_event(followup.conversation, "cancelled", followup_id=followup.pk,
                    reason=followup.reason, actor=actor)  # fmt: skip
    return bool(changed)


def followups_cancel_for_reply(*, conversation_id: int) -> int:
    """The visitor wrote: the conversation's scheduled follow-ups are no longer needed."""
    open_ = list(
        FollowUp.objects.filter(conversation_id=conversation_id, status=FollowUp.Status.SCHEDULED)
    )
    for followup in open_:
        followup_cancel(followup=followup, actor=None, reason="the visitor wrote first")
    return len(open_)


def contact_opt_out(*, conversation: Conversation) -> bool:
    """The visitor asked for no more messages: never write first to them again."""
    updated = Contact.objects.filter(pk=conversation.contact_id, opted_out_at=None).update(
        opted_out_at=timezone.now()
    )
    for followup in FollowUp.objects.filter(
        conversation__contact_id=conversation.contact_id, status=FollowUp.Status.SCHEDULED
    ):
        followup_cancel(followup=followup, actor=None, reason="the visitor opted out")
    if updated:
        from apps.leads.services import lead_for_conversation

        lead = lead_for_conversation(conversation.pk)
        if lead is not None:
            LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.OPTED_OUT,
                                     conversation_id=conversation.pk)  # fmt: skip
    return bool(updated)


def opt_out_confirmation(language: str) -> str:
    if language == "en":
        return (
            "Done: we won't send you any more follow-up messages. If you write to us, we'll "
            "gladly answer."
        )
    return (
        "Listo: no te enviaremos más mensajes de seguimiento. Si nos escribes, con gusto te "
        "respondemos."
    )


# --- Inactivity ----------------------------------------------------------------------------


def inactivity_scan(*, now: datetime | None = None) -> int:
    """Schedule the follow-ups of the flows' inactivity rules: a conversation the assistant
    has, silent for the rule's time (at most INACTIVITY_LOOKBACK more), whose contact can be
    written to. Once per rule and quiet period: the key holds the last activity's time."""
    from apps.experiments.services import variant_text
    from apps.flows.services import flows_active

    now = now or timezone.now()
    settings = followup_settings_get()
    if not settings.enabled:
        return 0
    flows = flows_active()
    scheduled = 0
    for rule in flows.with_trigger("inactive"):
        if not rule.message:
            continue
        silent_since = now - timedelta(seconds=rule.trigger.seconds)
        # Those already followed up by this rule in this silence, or with as many follow-ups
        # unanswered as allowed, are left out in the query: a batch is only new work.
        followed = FollowUp.objects.filter(
            conversation=OuterRef("pk"),
            rule_key=rule.key,
            silence_from=OuterRef("last_message_at"),
        )
        candidates = (
            Conversation.objects.filter(
                mode=Conversation.Mode.BOT,
                last_message_at__lte=silent_since,
                last_message_at__gt=silent_since - INACTIVITY_LOOKBACK,
                contact__opted_out_at=None,
                contact__unreachable=False,
            )
            .exclude(channel="test")
            .exclude(Exists(followed))
            .annotate(unanswered=Count("followups", filter=Q(
                followups__status=FollowUp.Status.SENT,
                followups__sent_at__gt=F("last_message_at"),
            )))
            .filter(unanswered__lt=settings.max_unanswered)
            .order_by("last_message_at")[:BATCH]
        )  # fmt: skip
        for conversation in candidates:
            assert conversation.last_message_at is not None
            stamp = int(conversation.last_message_at.timestamp())
            key = f"inactive:{rule.key}:{conversation.pk}:{stamp}"
            text = variant_text(
                target="flow_message",
                flow_rule=rule.key,
                channel=conversation.channel,
                session_id=conversation.session_id,
                conversation=conversation,
            )
            if followup_schedule(
                conversation=conversation, text=text or rule.message, due_at=now, key=key,
                source="inactivity", template=rule.template, rule_key=rule.key,
                silence_from=conversation.last_message_at,
            ):  # fmt: skip
                scheduled += 1
    return scheduled


# --- Sending -------------------------------------------------------------------------------


def _settle(followup: FollowUp, status: str, reason: str = "", **fields: Any) -> None:
    FollowUp.objects.filter(pk=followup.pk).update(
        status=status, reason=reason[:300], updated_at=timezone.now(), **fields
    )
    _lead_event(followup.conversation, status, followup_id=followup.pk, reason=reason[:300])


def _claim(followup_id: int, now: datetime) -> FollowUp | None:
    """Take a due follow-up for sending, or settle/move it; None when there is nothing to
    send now. Commits `sending` before returning it."""
    settings = followup_settings_get()
    with transaction.atomic():
        followup = (
            FollowUp.objects.select_for_update(skip_locked=True)
            .select_related("conversation__contact")
            .filter(pk=followup_id, status=FollowUp.Status.SCHEDULED, due_at__lte=now)
            .first()
        )
        if followup is None:
            return None
        conversation = followup.conversation
        contact = conversation.contact
        if not settings.enabled:
            _settle(followup, FollowUp.Status.SKIPPED, "follow-ups are turned off")
            return None
        if contact.opted_out_at is not None:
            _settle(followup, FollowUp.Status.CANCELLED, "the visitor opted out")
            return None
        if contact.unreachable:
            _settle(followup, FollowUp.Status.SKIPPED, "the contact cannot be reached")
            return None
        if conversation.mode not in Conversation.BOT_ANSWERS:
            _settle(followup, FollowUp.Status.SKIPPED, "a person has the conversation")
            return None
        wrote = Message.objects.filter(
            conversation=conversation, role=Message.Role.VISITOR, created_at__gt=followup.created_at
        ).exists()
        if wrote:
            _settle(followup, FollowUp.Status.CANCELLED, "the visitor wrote first")
            return None
        until = quiet_until(now, settings)
        if until is not None:
            FollowUp.objects.filter(pk=followup.pk).update(due_at=until, updated_at=now)
            return None
        followup.status = FollowUp.Status.SENDING
        followup.save(update_fields=["status", "updated_at"])
    return followup


def followup_send(*, followup_id: int, now: datetime | None = None) -> str:
    """Send one due follow-up at most once; returns its status afterwards ("" when it was not
    due, or another worker has it)."""
    now = now or timezone.now()
    followup = _claim(followup_id, now)
    if followup is None:
        return (
            FollowUp.objects.filter(pk=followup_id).values_list("status", flat=True).first() or ""
        )
    try:
        status, reason, message = _deliver(followup)
    except Exception as exc:  # an unexpected error: recorded, never retried (at most once)
        logger.exception("follow-up %s failed", followup.pk)
        status, reason, message = FollowUp.Status.FAILED, f"error: {exc}"[:300], None
    _settle(followup, status, reason, sent_at=timezone.now() if status == "sent" else None,
            message=message)  # fmt: skip
    if status == FollowUp.Status.SENT and followup.rule_key and followup.source == "inactivity":
        from apps.flows.services import rule_actions_run

        rule_actions_run(
            conversation=followup.conversation,
            rule_key=followup.rule_key,
            key=f"followup:{followup.pk}",
            detail=f"follow-up {followup.pk}",
        )
    return status


def _deliver(followup: FollowUp) -> tuple[str, str, Message | None]:
    from apps.channels.services import _within_window, deliver, deliver_schedule, template_send
    from apps.conversations.services import bot_message_send

    conversation = followup.conversation
    if conversation.channel == "whatsapp" and not _within_window(conversation):
        template = followup.template or followup_settings_get().whatsapp_template
        if not template:
            return (FollowUp.Status.SKIPPED,
                    "outside WhatsApp's 24-hour window and no approved template", None)  # fmt: skip
        outbound = template_send(conversation=conversation, template_name=template,
                                 variables=_template_variables(conversation, template))  # fmt: skip
        if outbound.status != "sent":
            return FollowUp.Status.FAILED, outbound.error or "the template was not sent", None
        return FollowUp.Status.SENT, f"template {template}", outbound.message
    message = bot_message_send(
        conversation=conversation, text=followup.text, intent="followup", deliver=False,
        activity=False,
    )  # fmt: skip
    if message is None:
        return FollowUp.Status.SKIPPED, "a person has the conversation", None
    if conversation.channel in {"telegram", "whatsapp"}:
        outcome = deliver(message.pk)
        if not outcome.done:
            deliver_schedule(message)  # parts not sent yet, with the channel's retries
        elif outcome.error:
            return FollowUp.Status.FAILED, outcome.error, message
        return FollowUp.Status.SENT, "", message
    reason = "shown at the visitor's next visit"
    if conversation.channel == "web" and followup_settings_get().email:
        email = _visitor_email(conversation)
        if email:
            _email(followup, conversation, email)
            reason += f"; emailed to {email}"
    return FollowUp.Status.SENT, reason, message


def _template_variables(conversation: Conversation, template_name: str) -> dict[str, str]:
    """A follow-up template's `{{1}}` is the visitor's first name (or a neutral greeting)."""
    from apps.channels.models import ChannelConnection
    from apps.channels.services import chat_of

    channel = ChannelConnection.objects.filter(pk=chat_of(conversation)[0]).first()
    templates = channel.templates if channel is not None else []
    body = next((str(t.get("body") or "") for t in templates if t.get("name") == template_name), "")
    if "{{1}}" not in body:
        return {}
    name = (conversation.contact.name or "").split()
    fallback = "there" if (conversation.language or "").startswith("en") else "hola"
    return {"1": name[0] if name else fallback}


def _visitor_email(conversation: Conversation) -> str:
    from apps.leads.services import lead_for_conversation

    lead = lead_for_conversation(conversation.pk)
    return (lead.email if lead is not None else "") or conversation.contact.email


def _email(followup: FollowUp, conversation: Conversation, email: str) -> None:
    """Email the follow-up once (marked before sending: at most once)."""
    from django.db import connection

    if not FollowUp.objects.filter(pk=followup.pk, emailed_at=None).update(
        emailed_at=timezone.now()
    ):
        return
    company = connection.tenant  # type: ignore[attr-defined]
    page = str((conversation.context or {}).get("page") or "")
    body = followup.text + (f"\n\n{page}" if page.startswith(("https://", "http://")) else "")
    try:
        EmailMessage(subject=company.name, body=body, to=[email]).send()
    except Exception:
        logger.exception("could not email follow-up %s", followup.pk)


def followups_due(*, now: datetime | None = None, limit: int = BATCH) -> list[int]:
    """Ids of follow-ups due now, oldest first; stale `sending` ones become `unknown`."""
    now = now or timezone.now()
    for stale in FollowUp.objects.filter(
        status=FollowUp.Status.SENDING, updated_at__lt=now - STALE_SENDING
    ).select_related("conversation"):
        _settle(
            stale,
            FollowUp.Status.UNKNOWN,
            "the sender stopped mid-send: not sent again (it may or may not have arrived)",
        )
    return list(
        FollowUp.objects.filter(status=FollowUp.Status.SCHEDULED, due_at__lte=now)
        .order_by("due_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def followups_for_lead(lead_id: int) -> list[FollowUp]:
    return list(
        FollowUp.objects.filter(conversation__contact__lead_id=lead_id)
        .filter(
            Q(status=FollowUp.Status.SCHEDULED)
            | Q(updated_at__gte=timezone.now() - timedelta(days=90))
        )
        .select_related("conversation")
        .order_by("-due_at", "-id")[:20]
    )
