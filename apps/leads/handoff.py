"""Human handoff: bot → pending_human → human → back to bot, or closed.

A conversation waits for a person when the visitor asks (the widget's action or plain words
in either language), when the company's rules say so (a qualified lead asks for a price, the
assistant could not answer twice in a row) — the assistant keeps helping meanwhile. An agent
takes it from the queue; from then on the bot stays silent (its replies are discarded at store
and at send time). The agent's messages reach the visitor on the conversation's channel with
the agent's name. If nobody takes it within the company's wait time, or the team is outside
business hours, the assistant says so and asks how to call back.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from apps.accounts.models import Membership, Role, User
from apps.analytics.services import event_emit
from apps.conversations.models import Conversation, Message
from apps.conversations.services import (
    HandoffResult,
    author_name,
    conversation_language,
    conversation_message_publish,
    conversation_mode_publish,
    handoff_request,
)
from apps.leads.models import LeadEvent, Notification
from apps.leads.realtime import inbox_publish

logger = logging.getLogger(__name__)

# A visitor asking for a person in plain words (Spanish or English, with or without accents).
# Three shapes: a verb of talking or passing on aimed at a person ("hablar con un asesor",
# "me pasas con alguien", "transfer me to sales"); wanting a person where the noun ends the
# request ("necesito un asesor", but not "necesito un agente aduanal para importar", a
# service); and a person qualified as real or human ("un ser humano", "a live agent").
_PERSON_ES = (
    r"(una?\s+|el\s+|la\s+|los\s+|las\s+|tu\s+|su\s+)?(ser\s+humano|persona|humano|humana|"
    r"asesor|asesora|asesores|agente|agentes|ejecutivo|ejecutiva|vendedor|vendedora|"
    r"representante|alguien|operador|operadora|encargado|encargada|equipo\s+de\s+ventas|"
    r"ventas|soporte)"
)
_PERSON_EN = (
    r"(a\s+|an\s+|the\s+|your\s+|some\s+)?(human|person|agent|representative|rep|"
    r"someone|somebody|some\s+one|sales(\s*(person|rep|team))?|support|operator|"
    r"real\s+person|manager)"
)
_ASKS_FOR_PERSON = re.compile(
    r"\b("
    r"(hablar|habla|hablo|platicar|platico|conversar|comunicarme|comunicar|chatear|contactar|"
    r"me\s+pasas|me\s+pas[aá]s|pasame|p[aá]same|me\s+comunicas|me\s+comunic[aá]s|"
    r"comun[ií]came|me\s+transfieres|transfi[eé]reme|me\s+conectas|con[eé]ctame|"
    r"me\s+contactas)\s+(con|a)\s+" + _PERSON_ES + r"|"
    r"(quiero|necesito|prefiero)\s+(una?\s+)?"
    r"(asesor|asesora|humano|persona|agente|ejecutivo|ejecutiva|ser\s+humano)"
    r"(?=\s*($|[.,;:!?¡¿)]|por\s+favor|ya\b|ahora|que\b|real|humano|de\s+ventas|de\s+verdad))|"
    r"(persona|agente|asesor|asesora)\s+(real|humano|humana)|ser\s+humano|atenci[oó]n\s+humana|"
    r"(talk|speak|chat)\s+(to|with)\s+" + _PERSON_EN + r"|"
    r"(connect|transfer|put)\s+me\s+(through\s+)?(to|with)\s+" + _PERSON_EN + r"|"
    r"(real|live)\s+(person|human|agent)|human\s+agent|customer\s+service\s+rep"
    r")\b",
    re.IGNORECASE,
)
_PRICE = re.compile(
    r"\b(precio|precios|cu[aá]nto\s+(cuesta|cuestan|vale|valen|sale|sale[n]?|cobran)|"
    r"cotizaci[oó]n|cotizar|tarifa|costo|price|prices|pricing|how\s+much|quote|cost)\b",
    re.IGNORECASE,
)


def asks_for_person(text: str) -> bool:
    return bool(_ASKS_FOR_PERSON.search(text))


def asks_for_price(text: str) -> bool:
    return bool(_PRICE.search(text))


class HandoffConflict(Exception):
    """Another team member has the conversation."""


def _business_open() -> bool:
    from apps.channels.models import WidgetSettings

    settings = WidgetSettings.objects.filter(pk=1).first()
    return settings is None or settings.is_open()


def _system_message(conversation: Conversation, text: str) -> Message:
    message = Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        role=Message.Role.SYSTEM,
        text=text,
        status=Message.Status.COMPLETED,
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=message.created_at)
    return message


def _lead_event(conversation: Conversation, new: str, **data: object) -> None:
    from apps.leads.services import lead_for_conversation

    lead = lead_for_conversation(conversation.pk)
    if lead is not None:
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.HANDOFF,
            new=new,
            conversation_id=conversation.pk,
            data=data,
        )


def _notify_team(conversation: Conversation, text: str) -> None:
    """An in-dashboard notification for everyone who can take conversations."""
    users = Membership.objects.exclude(role=Role.VIEWER).values_list("user_id", flat=True)
    Notification.objects.bulk_create(
        [
            Notification(
                user_id=user_id,
                kind="handoff",
                text=text[:300],
                url=f"/dashboard/inbox/conversations/{conversation.pk}/",
                conversation_id=conversation.pk,
            )
            for user_id in users
        ]
    )
    inbox_publish("notification", conversation_id=conversation.pk)


def conversation_handoff_request(
    *, conversation: Conversation, reason: str, publish: bool = True
) -> HandoffResult:
    """Put the conversation in the team's queue (`pending_human`) with a notice to the
    visitor in their language — outside business hours the notice says so and asks how to
    call back —, notify the team, and check after the company's wait time whether someone
    took it. `publish=False` when the caller shows the notice itself (the widget)."""
    from apps.leads.services import lead_settings_get
    from apps.leads.tasks import handoff_wait_task

    is_open = _business_open()
    with override(conversation_language(conversation)):
        if is_open:
            notice = _(
                "I've asked the team to join this conversation; a person will answer "
                "here shortly. Meanwhile I can keep helping you."
            )
        else:
            notice = _(
                "Our team is outside business hours right now. Leave your phone number or "
                "email and the best time to reach you, and a person will get back to you "
                "as soon as they're back. Meanwhile I can keep helping you."
            )
    with transaction.atomic():
        result = handoff_request(conversation=conversation, reason=reason, notice_text=notice)
        if not result.changed:
            return result
        conversation = result.conversation
        if not is_open:
            conversation.context = {
                **conversation.context,
                "handoff": {**conversation.context.get("handoff", {}), "callback": True},
            }
            conversation.save(update_fields=["context", "updated_at"])
        _lead_event(conversation, "requested", reason=reason)
        with override(getattr(connection.tenant, "language", None) or "es"):  # type: ignore[attr-defined]
            _notify_team(conversation, _("A visitor is waiting for a person (%(channel)s).")
                         % {"channel": conversation.get_channel_display()})  # fmt: skip
        inbox_publish("queue.changed", conversation_id=conversation.pk)
        if publish:
            conversation_mode_publish(conversation)
            if result.notice is not None:
                conversation_message_publish(result.notice)
        elif result.notice is not None and conversation.channel in ("telegram", "whatsapp"):
            conversation_message_publish(result.notice)
        if is_open:
            wait = lead_settings_get().handoff_wait_minutes
            requested = conversation.handoff_requested_at.isoformat()  # type: ignore[union-attr]
            conversation_id = conversation.pk
            transaction.on_commit(
                lambda: handoff_wait_task.apply_async(
                    args=[conversation_id, requested], countdown=wait * 60
                )
            )
    return result


def handoff_wait_expire(*, conversation_id: int, requested_at: str) -> Message | None:
    """Nobody took the conversation within the wait time: the assistant says so and asks how
    to call back (once per request; nothing if someone took it or it was asked again)."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
        if (
            conversation is None
            or conversation.mode != Conversation.Mode.PENDING_HUMAN
            or conversation.handoff_requested_at is None
            or conversation.handoff_requested_at.isoformat() != requested_at
            or conversation.context.get("handoff", {}).get("callback")
        ):
            return None
        from apps.leads.services import lead_settings_get

        wait = timedelta(minutes=lead_settings_get().handoff_wait_minutes)
        if timezone.now() < conversation.handoff_requested_at + wait:
            return None  # delivered early (a redelivery, a changed setting): not yet
        with override(conversation_language(conversation)):
            text = _(
                "Sorry, everyone on the team is busy right now. Leave your phone number or "
                "email and the best time to reach you, and we'll get back to you."
            )
        conversation.context = {
            **conversation.context,
            "handoff": {**conversation.context.get("handoff", {}), "callback": True},
        }
        conversation.save(update_fields=["context", "updated_at"])
        message = _system_message(conversation, text)
        event_emit(kind="handoff.unanswered", conversation_id=conversation.pk,
                   channel=conversation.channel)  # fmt: skip
        _lead_event(conversation, "unanswered")
        conversation_message_publish(message)
        inbox_publish("queue.changed", conversation_id=conversation.pk)
    return message


def conversation_take(
    *, conversation: Conversation, agent: User, force: bool = False
) -> Conversation:
    """`agent` takes the conversation: mode `human`, the bot stays silent from now on (a reply
    being generated is discarded), the visitor is told who joined. Taking it from another
    agent needs `force` (managers). Taking it again is a no-op."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.mode == Conversation.Mode.HUMAN and conversation.agent_id == agent.pk:
            return conversation
        if (
            conversation.mode == Conversation.Mode.HUMAN
            and conversation.agent_id is not None
            and not force
        ):
            raise HandoffConflict
        waited = None
        if conversation.handoff_requested_at is not None:
            waited = int((timezone.now() - conversation.handoff_requested_at).total_seconds())
        conversation.mode = Conversation.Mode.HUMAN
        conversation.agent_id = agent.pk
        conversation.save(update_fields=["mode", "agent", "updated_at"])
        with override(conversation_language(conversation)):
            text = _("%(name)s from the team has joined the conversation.") % {
                "name": author_name(agent) or _("A person")
            }
        message = _system_message(conversation, text)
        event_emit(kind="handoff.taken", conversation_id=conversation.pk,
                   channel=conversation.channel, agent_id=agent.pk,
                   waited_seconds=waited)  # fmt: skip
        _lead_event(conversation, "taken", agent=str(agent))
        from apps.leads.services import lead_for_conversation, lead_owner_set

        lead = lead_for_conversation(conversation.pk)
        if lead is not None and lead.owner_id is None:
            lead_owner_set(lead=lead, owner=agent, actor=agent)
        conversation_mode_publish(conversation)
        conversation_message_publish(message)
        inbox_publish("queue.changed", conversation_id=conversation.pk)
    return conversation


def conversation_release(*, conversation: Conversation, actor: User | None) -> Conversation:
    """Hand the conversation back to the assistant (mode `bot`)."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.mode == Conversation.Mode.BOT:
            return conversation
        conversation.mode = Conversation.Mode.BOT
        conversation.agent = None
        conversation.handoff_requested_at = None
        conversation.save(update_fields=["mode", "agent", "handoff_requested_at", "updated_at"])
        with override(conversation_language(conversation)):
            text = _("The assistant is back in this conversation. Ask me anything.")
        message = _system_message(conversation, text)
        event_emit(kind="handoff.released", conversation_id=conversation.pk,
                   channel=conversation.channel)  # fmt: skip
        _lead_event(conversation, "released")
        conversation_mode_publish(conversation)
        conversation_message_publish(message)
        inbox_publish("queue.changed", conversation_id=conversation.pk)
    return conversation


def conversation_close(*, conversation: Conversation, actor: User | None) -> Conversation:
    """Close the conversation (the bot stays silent; the visitor writing again reopens it with
    the assistant)."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.mode == Conversation.Mode.CLOSED:
            return conversation
        conversation.mode = Conversation.Mode.CLOSED
        conversation.handoff_requested_at = None
        conversation.save(update_fields=["mode", "handoff_requested_at", "updated_at"])
        with override(conversation_language(conversation)):
            text = _("This conversation is closed. Write again any time and we'll help you.")
        message = _system_message(conversation, text)
        event_emit(kind="conversation.closed", conversation_id=conversation.pk,
                   channel=conversation.channel)  # fmt: skip
        _lead_event(conversation, "closed")
        conversation_mode_publish(conversation)
        conversation_message_publish(message)
        inbox_publish("queue.changed", conversation_id=conversation.pk)
    return conversation


MAX_AGENT_MESSAGE = 4000


def agent_message_send(*, conversation: Conversation, agent: User, text: str) -> Message:
    """An agent writes to the visitor: the conversation is taken first if nobody has it
    (another agent's conversation raises HandoffConflict); the message reaches the visitor
    live on its channel, signed with the agent's name."""
    text = text.strip()
    if not text:
        raise ValueError("empty message")
    text = text[:MAX_AGENT_MESSAGE]
    with transaction.atomic():
        conversation = conversation_take(conversation=conversation, agent=agent)
        message = Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            role=Message.Role.AGENT,
            author_id=agent.pk,
            text=text,
            status=Message.Status.COMPLETED,
            completed_at=timezone.now(),
        )
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=message.created_at)
        event_emit(kind="agent.message", conversation_id=conversation.pk, message_id=message.pk,
                   channel=conversation.channel, agent_id=agent.pk)  # fmt: skip
        message.author = agent  # type: ignore[assignment]
        conversation_message_publish(message)
        inbox_publish("message.created", conversation_id=conversation.pk)
    return message
