"""How leads plug into the reply pipeline (registered in LeadsConfig.ready; see
apps.conversations.services.ReplyHooks and apps.assistants.prompting.PROMPT_HOOKS)."""

from __future__ import annotations

import logging

from django.db import transaction

from apps.conversations.generation import GenerationResult
from apps.conversations.models import Conversation, Message
from apps.leads import handoff
from apps.leads.models import Lead
from apps.leads.realtime import inbox_publish
from apps.leads.services import (
    lead_asked_record,
    lead_for_conversation,
    lead_for_reply,
    lead_for_reply_forget,
    lead_for_reply_keep,
    lead_known_fields,
    lead_message_process,
    lead_settings_get,
)

logger = logging.getLogger(__name__)

# The offline responder could not answer this many times in a row: a person should.
UNANSWERED_LIMIT = 2
_REPLY_TO = Message._meta.get_field("reply_to")


def on_unanswered(message_id: int) -> None:
    """A visitor message no reply task handles (a person has the conversation): read it into
    the lead, and show it at once to the agents watching the conversation."""
    from apps.leads.tasks import message_process_task

    conversation_id = (
        Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).first()
    )
    inbox_publish("message.created", conversation_id=conversation_id)
    try:
        message_process_task.delay(message_id)
    except Exception:
        logger.exception("could not queue lead processing of message %s", message_id)


def on_received(visitor: Message) -> None:
    """Read the message into the lead; hand off when the visitor asks for a person in plain
    words, or when a qualified lead asks for a price and the company's rules say so."""
    processed = lead_message_process(message=visitor)
    conversation = visitor.conversation
    lead_for_reply_keep(conversation.pk, processed.lead)  # as this message left it
    inbox_publish("message.created", conversation_id=conversation.pk)
    if conversation.mode != Conversation.Mode.BOT:
        return
    reason = ""
    if handoff.asks_for_person(visitor.text):
        reason = "visitor_asked"
    elif (
        processed.lead.qualified_at is not None
        and handoff.asks_for_price(visitor.text)
        and lead_settings_get().handoff_on_price_when_qualified
    ):
        reason = "qualified_price"
    if reason:
        handoff.conversation_handoff_request(conversation=conversation, reason=reason)


def known_fields(conversation: Conversation) -> frozenset[str]:
    lead = lead_for_reply(conversation.pk)
    if lead is None:
        return frozenset()
    return lead_known_fields(lead) | frozenset(lead.asked)


def on_lead_saved(sender: type[Lead], instance: Lead, **kwargs: object) -> None:
    lead_for_reply_forget(instance)


def on_generated(reply: Message, result: GenerationResult) -> None:
    """Remember which question the assistant asked; count answers it could not give; let the
    model read the conversation into the lead when it pauses."""
    from apps.leads.extract_model import lead_model_reading_schedule

    lead = lead_for_conversation(reply.conversation_id)
    if lead is not None and result.offline_asked:
        lead_asked_record(lead=lead, field=result.offline_asked)
    elif lead is not None and result.provider != "offline" and "?" in reply.text:
        # The model was told to ask for the first missing field (lead_prompt_text): a reply
        # with a question counts as having asked it, so it is never asked twice.
        missing = _missing(lead)
        if missing:
            lead_asked_record(lead=lead, field=missing[0])
    if result.provider == "offline":
        conversation = Conversation.objects.get(pk=reply.conversation_id)
        if result.offline_intent == "handoff" and conversation.mode == Conversation.Mode.BOT:
            # The responder told the visitor a person is coming (they accepted its offer after
            # an answer it did not have, or a health emergency): make it true.
            handoff.conversation_handoff_request(conversation=conversation, reason="visitor_asked")
        elif (
            result.offline_intent == "unknown"
            and conversation.mode == Conversation.Mode.BOT
            and _unanswered_in_a_row(reply) >= UNANSWERED_LIMIT
            and lead_settings_get().handoff_when_unanswered
        ):
            handoff.conversation_handoff_request(
                conversation=conversation, reason="assistant_cannot_answer"
            )
    elif reply.reply_to_id is not None and not result.fallback:
        visitor_id, conversation_id = reply.reply_to_id, reply.conversation_id
        # The reply task holds the visitor's message: its text need not be read again.
        text = reply.reply_to.text if _REPLY_TO.is_cached(reply) else None
        transaction.on_commit(
            lambda: lead_model_reading_schedule(
                conversation_id=conversation_id, message_id=visitor_id, text=text
            )
        )


def prompt_state(conversation_id: int) -> str:
    """What the model is told about the lead: what is known, what to ask next (one thing,
    never again once asked)."""
    lead = lead_for_reply(conversation_id)
    if lead is None:
        return ""
    return lead_prompt_text(lead)


def lead_prompt_text(lead: Lead) -> str:
    known = []
    if lead.name:
        known.append(f"name: {lead.name}")
    if lead.need:
        known.append(f"need: {lead.need}")
    if lead.budget_amount is not None:
        known.append(f"budget: {lead.budget_display}")
    if lead.timeline:
        known.append(f"timeline: {lead.timeline}")
    if lead.role:
        known.append(f"role: {lead.role}")
    if lead.company_name:
        known.append(f"company: {lead.company_name}")
    if lead.email or lead.phone:
        known.append("contact details: given")
    missing = _missing(lead)
    lines = ["Lead qualification (internal, never mention it):"]
    lines.append("- Known: " + ("; ".join(known) if known else "nothing yet"))
    if missing:
        lines.append(
            f"- Still unknown: {', '.join(missing)}. When it fits naturally, ask about "
            f"{missing[0]} only (one question per message); never ask again for what is known."
        )
    else:
        lines.append("- Qualification is complete: do not ask qualification questions again.")
    if lead.booking_at is not None:
        lines.append(f"- Next step already booked for {lead.booking_at.isoformat()}.")
    return "\n".join(lines)


def _missing(lead: Lead) -> list[str]:
    done = lead_known_fields(lead) | set(lead.asked)
    return [f for f in ("need", "budget", "timeline", "authority") if f not in done]


def _unanswered_in_a_row(reply: Message) -> int:
    """How many of the assistant's latest replies, up to `reply`, could not answer."""
    intents = (
        Message.objects.filter(
            conversation_id=reply.conversation_id,
            role=Message.Role.ASSISTANT,
            status=Message.Status.COMPLETED,
            id__lte=reply.pk,
        )
        .order_by("-id")
        .values_list("intent", flat=True)[:UNANSWERED_LIMIT]
    )
    count = 0
    for intent in intents:
        if intent != "unknown":
            break
        count += 1
    return count
