"""The model's structured reading of a conversation into its lead (JSON schema output), for
what needs understanding: the need in a sentence, a budget or timeline said loosely, a role.
Runs on the `llm` queue, only when the company uses a model, once the conversation pauses:
LEAD_MODEL_READING_DELAY_SECONDS after a reply, and only if the visitor has not written again
meanwhile (the later message's reading covers this one: it reads the last 20 messages)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from apps.assistants.providers.base import ChatMessage, CompletionRequest, ProviderError
from apps.assistants.providers.openai import OpenAIProvider
from apps.assistants.services import assistant_config_get
from apps.conversations.models import Message
from apps.conversations.services import budget_exhausted, usage_count
from apps.leads.services import MODEL_INSTRUCTIONS, MODEL_SCHEMA, lead_model_apply
from chapi import aio

logger = logging.getLogger(__name__)

TRANSCRIPT_MESSAGES = 20
MAX_TOKENS = 300


def _pending_key(conversation_id: int) -> str:
    return f"lead-reading:{connection.schema_name}:{conversation_id}"


def lead_model_reading_schedule(
    *, conversation_id: int, message_id: int, text: str | None = None
) -> bool:
    """After the reply to visitor message `message_id` (whose `text` the caller may know):
    schedule the model's reading of the conversation for when it pauses. Returns whether a
    reading was scheduled (not for a message too short to say anything about the visitor)."""
    from apps.leads.tasks import model_extract_task

    if text is None:
        text = Message.objects.filter(pk=message_id).values_list("text", flat=True).first()
    text = text or ""
    if not _says_enough(text):
        return False
    delay = settings.LEAD_MODEL_READING_DELAY_SECONDS
    if delay > 0:
        # The latest reading scheduled for the conversation: the earlier ones give way to it.
        cache.set(_pending_key(conversation_id), message_id, timeout=int(delay) + 600)
    model_extract_task.apply_async(
        (message_id,), {"conversation_id": conversation_id}, countdown=delay or None
    )
    return True


def lead_model_extract(*, message_id: int, conversation_id: int | None = None) -> list[str]:
    """Ask the company's model what the visitor said about themselves up to `message_id` and
    apply it with source "model". Skipped when a reading of a later message of the same
    conversation is scheduled (`conversation_id` given). A provider error is logged and
    skipped: the exact readings are already applied, and the next message tries again.
    Returns the changed fields."""
    if conversation_id is not None:
        latest = cache.get(_pending_key(conversation_id))
        if isinstance(latest, int) and latest > message_id:
            logger.debug("lead reading of message %s left to message %s", message_id, latest)
            return []
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None or message.role != Message.Role.VISITOR:
        return []
    company = connection.tenant  # type: ignore[attr-defined]
    config = assistant_config_get(company_name=company.name)
    if config.provider != "openai" or not model_reading_useful(message):
        return []
    if budget_exhausted(config):
        return []
    rows = list(
        Message.objects.filter(
            conversation_id=message.conversation_id,
            id__lte=message.pk,
            role__in=[Message.Role.VISITOR, Message.Role.ASSISTANT, Message.Role.AGENT],
            status__in=[Message.Status.RECEIVED, Message.Status.COMPLETED],
        )
        .order_by("-id")
        .values_list("role", "text")[:TRANSCRIPT_MESSAGES]
    )
    rows.reverse()
    transcript = "\n".join(
        f"{'Visitor' if role == Message.Role.VISITOR else 'Seller'}: {text}" for role, text in rows
    )
    request = CompletionRequest(
        messages=(
            ChatMessage("system", MODEL_INSTRUCTIONS),
            ChatMessage("user", transcript),
        ),
        model=config.model,
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    provider = OpenAIProvider(api_key=config.api_key, base_url=config.base_url)
    try:
        answer = aio.run(provider.complete_json(request, schema=MODEL_SCHEMA, name="lead"))
    except ProviderError as exc:
        logger.info("lead reading by the model skipped: %s", exc.reason)
        return []
    usage = provider.last_usage
    usage_count(model=config.model, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens)  # fmt: skip
    return lead_model_apply(message=message, data=answer)


# What only understanding can read; email, phone and exact amounts are read by rules.
_MODEL_FIELDS = ("need", "role", "company_name", "budget", "timeline", "name")
MIN_WORDS = 4


def _says_enough(text: str) -> bool:
    """A message of a few words at least: shorter ones say nothing about the visitor."""
    return len(text.split()) >= MIN_WORDS


def model_reading_useful(message: Message) -> bool:
    """Spend a model request only when the company allows it, the message says something
    (a few words at least) and the lead still misses something the model could read."""
    from apps.leads.services import lead_for_conversation, lead_settings_get

    if not _says_enough(message.text) or not lead_settings_get().model_reading:
        return False
    lead = lead_for_conversation(message.conversation_id)
    if lead is None:
        return True
    known = {
        "need": bool(lead.need),
        "role": bool(lead.role),
        "company_name": bool(lead.company_name),
        "budget": lead.budget_amount is not None,
        "timeline": bool(lead.timeline),
        "name": bool(lead.name),
    }
    return not all(known[field] for field in _MODEL_FIELDS)
