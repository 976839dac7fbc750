"""Messaging channels: connecting and disconnecting them, what their webhooks bring in, and
delivering the assistant's replies through their APIs (docs/channels/)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import schema_context

from apps.analytics.services import event_emit
from apps.assistants.services import assistant_profile_get
from apps.audit.services import Actor, audit_record
from apps.channels.adapters import (
    Ignored,
    Inbound,
    Parsed,
    SendError,
    SetupError,
    StatusUpdate,
    adapter_for,
)
from apps.channels.models import ChannelConnection, InboundEvent, OutboundMessage
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import BURST_CHANNELS, message_receive, reply_schedule
from apps.tenants.models import Company
from apps.webhooks.models import WebhookRoute

logger = logging.getLogger(__name__)

WHATSAPP_WINDOW = timedelta(hours=24)
_PATHS = {"telegram": "telegram", "whatsapp_twilio": "twilio", "whatsapp_meta": "meta"}
# Which credentials each kind takes (the rest stay empty).
CREDENTIALS = {
    "telegram": ("bot_token",),
    "whatsapp_twilio": ("account_sid", "auth_token", "sender"),
    "whatsapp_meta": ("phone_number_id", "access_token", "app_secret", "verify_token"),
}


def webhook_base_url() -> str:
    """Where providers reach the product: PUBLIC_BASE_URL, else https://ROOT_DOMAIN."""
    return settings.PUBLIC_BASE_URL or f"https://{settings.ROOT_DOMAIN}"


def webhook_url(
    connection_: ChannelConnection, *, status: bool = False, base: str | None = None
) -> str:
    """The URL a provider calls for this channel (Twilio: `status=True` for the delivery
    status callbacks)."""
    path = f"/hooks/{_PATHS[connection_.kind]}/{connection_.webhook_id}"
    if status:
        path += "/status"
    return f"{(base or webhook_base_url()).rstrip('/')}{path}"


# -- connecting ---------------------------------------------------------------------------------


def channel_connect(
    *,
    company: Company,
    kind: str,
    name: str,
    credentials: dict[str, str],
    actor: Actor,
    base_url: str | None = None,
) -> ChannelConnection:
    """Validate the credentials with the provider, register the webhook where the provider
    allows it (Telegram's setWebhook with a random secret token), and save the channel with
    its route. Raises SetupError (nothing saved) when the provider refuses."""
    if kind not in CREDENTIALS:
        raise ValueError(f"Unknown channel kind {kind!r}.")
    if _already_connected(kind, credentials):
        # Connecting a bot again would replace its webhook secret under the active channel.
        raise SetupError(_("This account is already connected: disconnect it first."))
    channel = ChannelConnection(
        kind=kind,
        name=name.strip()[:100] or str(ChannelConnection.Kind(kind).label),
        webhook_id=secrets.token_urlsafe(18),
        created_by=actor.email,
        **{field: credentials.get(field, "").strip() for field in CREDENTIALS[kind]},
    )
    if kind == ChannelConnection.Kind.TELEGRAM:
        channel.secret_token = secrets.token_urlsafe(32)
    if kind == ChannelConnection.Kind.WHATSAPP_META and not channel.verify_token:
        channel.verify_token = secrets.token_urlsafe(24)
    adapter_for(kind).setup(channel, webhook_url(channel, base=base_url))
    with transaction.atomic():
        channel.save()
        with schema_context("public"):
            WebhookRoute.objects.create(webhook_id=channel.webhook_id, company=company, kind=kind)
        audit_record(
            actor=actor,
            action="channel.connect",
            instance=channel,
            changes={"kind": [None, kind], "name": [None, channel.name]},
        )
    return channel


def _already_connected(kind: str, credentials: dict[str, str]) -> bool:
    active = ChannelConnection.objects.filter(kind=kind, status=ChannelConnection.Status.ACTIVE)
    if kind == ChannelConnection.Kind.TELEGRAM:
        token = credentials.get("bot_token", "").strip()
        # Tokens are encrypted (each ciphertext differs): compare in Python; few rows.
        return any(channel.bot_token == token for channel in active)
    if kind == ChannelConnection.Kind.WHATSAPP_TWILIO:
        return active.filter(
            account_sid=credentials.get("account_sid", "").strip(),
            sender=credentials.get("sender", "").strip(),
        ).exists()
    return active.filter(phone_number_id=credentials.get("phone_number_id", "").strip()).exists()


def channel_disconnect(*, channel: ChannelConnection, actor: Actor) -> None:
    """Stop the channel: the provider's webhook is removed where possible (Telegram), the
    route is deleted (later requests get a 404) and the channel is kept, disconnected, with
    its history."""
    if not channel.is_active:
        return
    try:
        adapter_for(channel.kind).teardown(channel)
    except SendError as exc:
        logger.warning("could not remove the webhook of channel %s: %s", channel.pk, exc)
    with transaction.atomic():
        channel.status = ChannelConnection.Status.DISCONNECTED
        channel.disconnected_at = timezone.now()
        channel.save(update_fields=["status", "disconnected_at"])
        with schema_context("public"):
            WebhookRoute.objects.filter(webhook_id=channel.webhook_id).delete()
        audit_record(actor=actor, action="channel.disconnect", instance=channel)


# -- inbound ------------------------------------------------------------------------------------


def session_for(channel: ChannelConnection, chat_id: str) -> str:
    return f"{channel.pk}:{chat_id}"


def chat_of(conversation: Conversation) -> tuple[int, str]:
    connection_id, _, chat_id = conversation.session_id.partition(":")
    return int(connection_id), chat_id


@dataclass(frozen=True)
class InboundResult:
    stored: int  # messages stored
    duplicates: int  # already received (replays)
    ignored: int
    statuses: int


def inbound_handle(*, channel: ChannelConnection, items: list[Parsed]) -> InboundResult:
    """Store what a verified webhook request carried, each item once (a replay is a no-op),
    and schedule the work: replies wait for the end of a burst (CHANNEL_BURST_SECONDS)."""
    counts = {"stored": 0, "duplicates": 0, "ignored": 0, "statuses": 0}
    for item in items:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    event = InboundEvent.objects.create(
                        connection=channel,
                        provider_id=item.provider_id[:128],
                        kind=item.kind
                        if not isinstance(item, StatusUpdate)
                        else f"status.{item.status}",
                        outcome=_outcome(item),
                        reason=item.reason if isinstance(item, Ignored) else "",
                        payload=_trace(item),
                    )
            except IntegrityError:
                counts["duplicates"] += 1
                continue
            if isinstance(item, Inbound):
                event.message = _message_store(channel, item)
                event.save(update_fields=["message"])
                counts["stored"] += 1
            elif isinstance(item, StatusUpdate):
                _status_store(channel, item)
                counts["statuses"] += 1
            else:
                counts["ignored"] += 1
                if item.reply and item.chat_id:
                    _notice_schedule(channel, item.chat_id, item.reply)
    ChannelConnection.objects.filter(pk=channel.pk).update(last_update_at=timezone.now())
    return InboundResult(**counts)


def _outcome(item: Parsed) -> str:
    if isinstance(item, Inbound):
        return InboundEvent.Outcome.MESSAGE
    if isinstance(item, StatusUpdate):
        return InboundEvent.Outcome.STATUS
    return InboundEvent.Outcome.IGNORED


def _trace(item: Parsed) -> dict[str, Any]:
    """What is kept of an inbound item on its event (the message text is on the message)."""
    if isinstance(item, Inbound):
        return {"chat_id": item.chat_id, "attachments": item.attachments, "command": item.command}
    if isinstance(item, StatusUpdate):
        return {"message": item.provider_message_id, "status": item.status, "error": item.error}
    return {"chat_id": item.chat_id}


def _message_store(channel: ChannelConnection, item: Inbound) -> Message:
    received = message_receive(
        channel=channel.conversation_channel,
        session_id=session_for(channel, item.chat_id),
        text=item.text[: settings.CHAT_MAX_MESSAGE_CHARS * 2],
        external_id=f"{channel.pk}:{item.provider_id}",
        context={"channel_id": channel.pk, **item.context},
        contact_external_id=f"{channel.pk}:{item.sender_id}",
        attachments=item.attachments,
        generate=False,
        caller_replies=True,
    )
    contact = received.conversation.contact
    updates: dict[str, Any] = {}
    if item.name and not contact.name:
        updates["name"] = item.name[:200]
    if item.phone and contact.phone != item.phone:
        updates["phone"] = item.phone[:40]
    if contact.unreachable:
        updates["unreachable"] = False  # they wrote: reachable again
    if updates:
        Contact.objects.filter(pk=contact.pk).update(**updates)
    if item.command == "start":
        _welcome(received.message)
    elif received.conversation.mode in Conversation.BOT_ANSWERS:
        reply_schedule(message_id=received.message.pk, countdown=settings.CHANNEL_BURST_SECONDS)
    return received.message


def _welcome(visitor: Message) -> None:
    """/start: the welcome message, at once and without the model."""
    from apps.experiments.services import variant_text

    profile = assistant_profile_get()
    conversation = visitor.conversation
    welcome = variant_text(
        target="welcome",
        channel=conversation.channel,
        session_id=conversation.session_id,
        conversation=conversation,
    )
    reply = Message.objects.create(
        conversation_id=visitor.conversation_id,
        channel=visitor.channel,
        role=Message.Role.ASSISTANT,
        reply_to=visitor,
        text=welcome or profile.welcome_message,
        status=Message.Status.COMPLETED,
        provider="welcome",
        completed_at=timezone.now(),
    )
    deliver_schedule(reply)


def _status_store(channel: ChannelConnection, item: StatusUpdate) -> None:
    rank = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
    outbound = OutboundMessage.objects.filter(
        connection=channel, provider_message_id=item.provider_message_id
    ).first()
    if outbound is None or item.status not in rank:
        return
    # Statuses can arrive out of order: never go back (read stays read), failed always wins.
    if rank[item.status] > rank.get(outbound.status, 0):
        outbound.status = item.status
        if item.error:
            outbound.error = item.error[:1000]
        outbound.save(update_fields=["status", "error", "updated_at"])


def _notice_schedule(channel: ChannelConnection, chat_id: str, text: str) -> None:
    from apps.channels.tasks import notice_send_task

    transaction.on_commit(lambda: notice_send_task.delay(channel.pk, chat_id, text))


# -- outbound -----------------------------------------------------------------------------------


def deliver_on_store(reply: Message) -> None:
    """The pipeline's `ReplyHooks.stored`: a reply for a messaging channel goes out through
    its API."""
    if reply.channel in BURST_CHANNELS:
        deliver_schedule(reply)


def deliver_schedule(reply: Message) -> None:
    """Send a stored reply through its channel after commit (a task with retries)."""
    from apps.channels.tasks import deliver_task

    transaction.on_commit(lambda: deliver_task.delay(reply.pk))


@dataclass(frozen=True)
class Delivery:
    done: bool  # nothing left to try
    retry_in: float | None = None  # try again in this many seconds
    error: str = ""


def _within_window(conversation: Conversation) -> bool:
    last = (
        Message.objects.filter(conversation=conversation, role=Message.Role.VISITOR)
        .order_by("-id")
        .values_list("created_at", flat=True)
        .first()
    )
    return last is not None and timezone.now() - last < WHATSAPP_WINDOW


def deliver(message_id: int, *, attempt: int = 0) -> Delivery:
    """Send the reply `message_id` in parts at the platform's limit, each part once (a part
    already sent is not sent again). A person who took the conversation meanwhile stops the
    delivery (the reply is discarded); a permanent error stops it and may mark the contact
    unreachable; anything else asks to be retried."""
    reply = Message.objects.select_related("conversation__contact").get(pk=message_id)
    conversation = reply.conversation
    if reply.status not in {Message.Status.COMPLETED, Message.Status.REFUSED}:
        return Delivery(done=True, error=f"reply is {reply.status}")
    if conversation.mode not in Conversation.BOT_ANSWERS and reply.role == Message.Role.ASSISTANT:
        # The bot never talks over a person: drop what was not sent yet.
        Message.objects.filter(pk=reply.pk).update(status=Message.Status.DISCARDED)
        OutboundMessage.objects.filter(message=reply, status=OutboundMessage.Status.PENDING).update(
            status=OutboundMessage.Status.FAILED, error="discarded: a person has the conversation"
        )
        event_emit(kind="reply.discarded", conversation_id=conversation.pk, message_id=reply.pk)
        return Delivery(done=True, error="discarded")
    channel_id, chat_id = chat_of(conversation)
    channel = ChannelConnection.objects.get(pk=channel_id)
    adapter = adapter_for(channel.kind)
    parts = _parts(channel, reply, adapter.limit, getattr(adapter, "measure", len))
    if conversation.channel == "whatsapp" and not _within_window(conversation):
        _fail(parts, "outside WhatsApp's 24-hour window: only approved templates may be sent")
        return Delivery(done=True, error="outside_window")
    if not channel.is_active:
        _fail(parts, "the channel is disconnected")
        return Delivery(done=True, error="disconnected")
    for part in parts:
        if part.status != OutboundMessage.Status.PENDING:
            continue
        part.attempts += 1
        try:
            part.provider_message_id = adapter.send(channel, chat_id, part.text)[:128]
        except SendError as exc:
            part.error = str(exc)[:1000]
            if exc.permanent or attempt + 1 >= settings.CHANNEL_SEND_MAX_ATTEMPTS:
                part.status = OutboundMessage.Status.FAILED
                part.save(update_fields=["attempts", "error", "status", "updated_at"])
                _fail(parts, f"an earlier part failed: {exc}")
                _channel_error(channel, str(exc))
                if exc.unreachable:
                    Contact.objects.filter(pk=conversation.contact_id).update(unreachable=True)
                event_emit(
                    kind="delivery.failed",
                    conversation_id=conversation.pk,
                    message_id=reply.pk,
                    channel=conversation.channel,
                    error=str(exc)[:200],
                    unreachable=exc.unreachable,
                )
                return Delivery(done=True, error=str(exc))
            part.save(update_fields=["attempts", "error", "updated_at"])
            backoff = min(60.0, 2.0**attempt)
            return Delivery(done=False, retry_in=max(exc.retry_after or 0, backoff), error=str(exc))
        part.status = OutboundMessage.Status.SENT
        part.error = ""
        part.save(
            update_fields=["attempts", "provider_message_id", "status", "error", "updated_at"]
        )
    return Delivery(done=True)


def _parts(
    channel: ChannelConnection, reply: Message, limit: int, size: Callable[[str], int] = len
) -> list[OutboundMessage]:
    from apps.channels.adapters import split_text

    existing = list(OutboundMessage.objects.filter(message=reply).order_by("part"))
    if existing:
        return existing
    body = reply.text
    if reply.role == Message.Role.AGENT and reply.author_id:
        from apps.conversations.services import author_name

        # The visitor sees who writes: "Ana: …" (the widget shows it beside the message).
        body = f"{author_name(reply.author)}: {body}"
    for index, text in enumerate(split_text(body, limit, size)):
        OutboundMessage.objects.get_or_create(
            message=reply, part=index, defaults={"connection": channel, "text": text}
        )
    return list(OutboundMessage.objects.filter(message=reply).order_by("part"))


def _fail(parts: list[OutboundMessage], error: str) -> None:
    ids = [part.pk for part in parts if part.status == OutboundMessage.Status.PENDING]
    OutboundMessage.objects.filter(pk__in=ids).update(
        status=OutboundMessage.Status.FAILED, error=error
    )


def _channel_error(channel: ChannelConnection, error: str) -> None:
    ChannelConnection.objects.filter(pk=channel.pk).update(
        last_error=error[:1000], last_error_at=timezone.now()
    )


def typing_send(conversation: Conversation) -> None:
    """Telegram's typing indicator while a reply is generated (best effort)."""
    if conversation.channel != "telegram":
        return
    channel_id, chat_id = chat_of(conversation)
    channel = ChannelConnection.objects.filter(pk=channel_id).first()
    if channel is None or not channel.is_active:
        return
    try:
        adapter_for(channel.kind).typing(channel, chat_id)
    except SendError as exc:
        logger.info("typing indicator not sent on channel %s: %s", channel.pk, exc)


def notice_send(channel_id: int, chat_id: str, text: str) -> None:
    channel = ChannelConnection.objects.get(pk=channel_id)
    adapter_for(channel.kind).send(channel, chat_id, text)


def template_send(
    *, conversation: Conversation, template_name: str, variables: dict[str, str] | None = None
) -> OutboundMessage:
    """Send one of the channel's approved WhatsApp templates (the only messages allowed
    outside the 24-hour window), stored as a system message of the conversation."""
    channel_id, chat_id = chat_of(conversation)
    channel = ChannelConnection.objects.get(pk=channel_id)
    if not channel.is_active:
        raise SendError("The channel is disconnected.", permanent=True)
    template = next((t for t in channel.templates if t.get("name") == template_name), None)
    if template is None:
        raise SendError(f"No approved template named {template_name!r}.", permanent=True)
    adapter = adapter_for(channel.kind)
    if not hasattr(adapter, "send_template"):
        raise SendError("This channel has no templates.", permanent=True)
    message = Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        role=Message.Role.SYSTEM,
        text=str(template.get("body") or template_name),
        status=Message.Status.COMPLETED,
        provider="template",
        completed_at=timezone.now(),
    )
    outbound = OutboundMessage.objects.create(
        connection=channel,
        message=message,
        text=message.text,
        template=template_name,
        attempts=1,
    )
    try:
        outbound.provider_message_id = adapter.send_template(
            channel, chat_id, template, variables or {}
        )
        outbound.status = OutboundMessage.Status.SENT
    except SendError as exc:
        outbound.status = OutboundMessage.Status.FAILED
        outbound.error = str(exc)[:1000]
        if exc.unreachable:
            Contact.objects.filter(pk=conversation.contact_id).update(unreachable=True)
    outbound.save()
    return outbound
