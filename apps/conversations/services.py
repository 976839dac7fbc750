"""The reply pipeline's writes: receiving a visitor's message and storing the reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Any

from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.analytics.services import event_emit
from apps.assistants.offline import Turn, detect_language
from apps.assistants.pricing import usage_cost
from apps.assistants.prompting import AssistantConfig, messages_compose
from apps.assistants.providers.offline import OfflineContext
from apps.assistants.services import assistant_config_get
from apps.conversations.generation import GenerationResult, reply_generate_async
from apps.conversations.models import Channel, Contact, Conversation, Message, UsageMonth
from apps.conversations.realtime import Publisher, conversation_group
from chapi import aio

logger = logging.getLogger(__name__)

HISTORY_MESSAGES = 50  # read at most this many earlier messages; the token window trims more

# Channels whose people write in bursts (several short messages in a row): a reply waits for
# the burst to end and answers the last message with the others in view.
BURST_CHANNELS = frozenset({Channel.TELEGRAM, Channel.WHATSAPP})


class ReplyHooks:
    """What other apps plug into the pipeline (registered in their AppConfig.ready), in the
    order they run for one visitor message:

    - `unanswered(message_id)`: on commit, for a visitor message no reply task will handle
      (a person has the conversation, or no reply was asked for);
    - `received(visitor)`: in the reply task, first, for every visitor message (also those of
      a burst answered together), e.g. reading the lead's details;
    - `known(conversation)`: qualification fields already known (the offline responder never
      asks for them);
    - `answer(visitor)`: a reply decided without the model (e.g. a booking confirmation), the
      first non-None wins;
    - `configure(config, conversation)` returns the AssistantConfig for this reply (e.g. an A/B
      test's variant of the system prompt or welcome);
    - `starting(conversation)` before a reply is generated (e.g. a typing indicator);
    - `generated(reply, result)` after the reply is stored, with what the generation knew
      (e.g. which question the offline responder asked);
    - `stored(message)` after a message for the visitor is stored (replies, and the notices
      and agents' messages of a handoff), e.g. delivery through a channel's API.

    Hooks must not raise; a failing hook is logged and skipped (`strict`, set by the test
    suite, raises instead: a broken hook must not pass unnoticed). What several hooks of one
    reply read alike (e.g. the lead), they may share through `reply_scope()`."""

    strict = False

    unanswered: list[Callable[[int], None]] = []
    received: list[Callable[[Message], None]] = []
    known: list[Callable[[Conversation], frozenset[str]]] = []
    answer: list[Callable[[Message], str | None]] = []
    configure: list[Callable[[AssistantConfig, Conversation], AssistantConfig]] = []
    starting: list[Callable[[Conversation], None]] = []
    generated: list[Callable[[Message, GenerationResult], None]] = []
    stored: list[Callable[[Message], None]] = []

    @classmethod
    def run(cls, hooks: list[Callable[..., Any]], *subject: Any) -> list[Any]:
        results = []
        for hook in hooks:
            try:
                results.append(hook(*subject))
            except Exception:
                if cls.strict:
                    raise
                logger.exception("reply hook %s failed", getattr(hook, "__name__", hook))
        return results


# What the hooks of the reply being generated share, up to the model's call (see reply_scope).
_REPLY_SCOPE: ContextVar[dict[str, Any] | None] = ContextVar("reply_scope", default=None)


def reply_scope() -> dict[str, Any]:
    """Values the hooks of one reply share until the model is called, e.g. the lead that
    the `received`, `answer`, `known` and prompt hooks would each read again. Outside a reply
    task (and after the model's call) it is a new empty dict each time: nothing is kept."""
    scope = _REPLY_SCOPE.get()
    return {} if scope is None else scope


@contextmanager
def reply_scoped() -> Iterator[dict[str, Any]]:
    """Open the reply scope of the code within (a reply task; tests)."""
    scope: dict[str, Any] = {}
    token = _REPLY_SCOPE.set(scope)
    try:
        yield scope
    finally:
        _REPLY_SCOPE.reset(token)


@dataclass(frozen=True)
class Received:
    conversation: Conversation
    message: Message
    created: bool  # False: the same external id was received before (answered once)
    # Whether the reply task was handed to the broker (None: no reply needed, or the
    # enclosing transaction has not committed yet).
    scheduled: bool | None = None


def message_receive(
    *,
    channel: str,
    session_id: str,
    text: str,
    external_id: str | None = None,
    context: dict[str, Any] | None = None,
    contact_external_id: str | None = None,
    reply_channel: str | None = None,
    reply_deltas: bool = True,
    generate: bool = True,
    attachments: list[dict[str, Any]] | None = None,
    caller_replies: bool = False,
) -> Received:
    """Store a visitor's message before anything else happens, in one transaction with its
    contact and conversation (created on first contact; `context` is merged in). A message
    whose `external_id` was already received for this channel is not stored again and not
    answered again. After commit, the reply task is sent (queue `llm`) if the conversation
    is in bot mode; its events also go to `reply_channel` when given. With `generate=False`
    nothing is scheduled; `caller_replies` says the caller answers it itself when the mode
    allows (the widget, the messaging channels, the test chat), so the `unanswered` hooks run
    only when a person has the conversation (else the message would be read twice)."""
    with transaction.atomic():
        if external_id is not None:
            existing = (
                Message.objects.select_related("conversation")
                .filter(channel=channel, external_id=external_id)
                .first()
            )
            if existing is not None:
                return Received(existing.conversation, existing, created=False)
        contact, _ = Contact.objects.get_or_create(
            channel=channel, external_id=contact_external_id or session_id
        )
        conversation, created = Conversation.objects.get_or_create(
            channel=channel,
            session_id=session_id,
            defaults={
                "contact": contact,
                "context": context or {},
                "language": detect_language(text, default=""),
            },
        )
        changed = context and any(conversation.context.get(k) != v for k, v in context.items())
        if changed and not created:
            conversation.context = {**conversation.context, **(context or {})}
            conversation.save(update_fields=["context", "updated_at"])
        now = timezone.now()
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conversation,
                    channel=channel,
                    role=Message.Role.VISITOR,
                    text=text,
                    status=Message.Status.RECEIVED,
                    external_id=external_id,
                    attachments=attachments or [],
                )
        except IntegrityError:
            # The same external id arrived concurrently: the other request answers it.
            existing = Message.objects.get(channel=channel, external_id=external_id)
            return Received(conversation, existing, created=False)
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now)
        event_emit(
            kind="conversation.started" if created else "message.received",
            conversation_id=conversation.pk,
            message_id=message.pk,
            channel=channel,
        )
        schedule: dict[str, bool] = {}
        if conversation.mode == Conversation.Mode.CLOSED:
            # Writing again reopens a closed conversation, with the assistant.
            conversation.mode = Conversation.Mode.BOT
            conversation.agent = None
            conversation.save(update_fields=["mode", "agent", "updated_at"])
            event_emit(kind="conversation.reopened", conversation_id=conversation.pk,
                       channel=channel)  # fmt: skip
        if generate and conversation.mode in Conversation.BOT_ANSWERS:
            reply_schedule(
                message_id=message.pk,
                reply_channel=reply_channel,
                reply_deltas=reply_deltas,
                state=schedule,
            )
        elif ReplyHooks.unanswered and not (
            caller_replies and conversation.mode in Conversation.BOT_ANSWERS
        ):
            message_id = message.pk
            transaction.on_commit(lambda: ReplyHooks.run(ReplyHooks.unanswered, message_id))
    return Received(conversation, message, created=True, scheduled=schedule.get("ok"))


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation with its messages (and its contact when it has no other)."""
    contact_id = conversation.contact_id
    with transaction.atomic():
        conversation.delete()
        Contact.objects.filter(pk=contact_id, conversations__isnull=True).delete()


def reply_schedule(
    *,
    message_id: int,
    reply_channel: str | None = None,
    reply_deltas: bool = True,
    state: dict[str, bool] | None = None,
    countdown: float = 0,
) -> None:
    """Send the reply task once the current transaction commits (in this schema), to run in
    `countdown` seconds. A broker outage does not lose the message (it is stored);
    `state["ok"]` says whether it was sent."""
    from apps.conversations.tasks import reply_generate_task

    def send() -> None:
        try:
            kwargs: dict[str, Any] = {"reply_channel": reply_channel}
            if not reply_deltas:
                kwargs["reply_deltas"] = False
            options = {"countdown": countdown} if countdown else {}
            reply_generate_task.apply_async(args=[message_id], kwargs=kwargs, **options)
        except Exception:
            logger.exception("could not queue the reply to message %s", message_id)
            ok = False
        else:
            ok = True
        if state is not None:
            state["ok"] = ok

    transaction.on_commit(send)


def _history(visitor: Message) -> list[Turn]:
    rows = list(
        Message.objects.filter(conversation_id=visitor.conversation_id, id__lt=visitor.pk)
        .exclude(status__in=[Message.Status.DISCARDED, Message.Status.FAILED])
        .exclude(role=Message.Role.SYSTEM)
        .order_by("-id")
        .values_list("role", "text")[:HISTORY_MESSAGES]
    )
    rows.reverse()
    return [
        Turn(role="user" if role == Message.Role.VISITOR else "assistant", text=text)
        for role, text in rows
        if text
    ]


def _month() -> date:
    return timezone.now().date().replace(day=1)


def budget_exhausted(config: AssistantConfig) -> bool:
    if config.monthly_token_budget <= 0:
        return False
    usage = UsageMonth.objects.filter(month=_month()).first()
    return usage is not None and usage.total_tokens >= config.monthly_token_budget


def reply_summary(reply: Message) -> dict[str, Any]:
    """What clients are told of a stored reply (the `reply.completed` event, API answers). A
    discarded reply (a person took over) was never delivered: no text, no id."""
    if reply.status == Message.Status.DISCARDED:
        return {"conversation_id": reply.conversation_id, "text": None, "message_id": None,
                "status": reply.status, "fallback": False, "usage": None}  # fmt: skip
    return {
        "conversation_id": reply.conversation_id,
        "message_id": reply.pk,
        "created_at": reply.created_at.isoformat() if reply.created_at else None,
        "text": reply.text,
        "status": reply.status,
        "fallback": reply.fallback,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cost": str(reply.cost),
            "model": reply.model,
            "provider": reply.provider,
        },
    }


def _republish(reply: Message, reply_channel: str | None) -> None:
    publisher = Publisher(
        group=conversation_group(connection.schema_name, reply.conversation_id),  # type: ignore[attr-defined]
        reply_channel=reply_channel,
        message_id=reply.pk,
    )
    aio.run(publisher.completed(reply_summary(reply)))


def reply_generate(
    *, message_id: int, reply_channel: str | None = None, reply_deltas: bool = True
) -> Message | None:
    """Answer the visitor message `message_id` (in the current schema). Idempotent: a message
    is answered once; a second run re-announces the stored reply. The conversation's mode is
    checked again before the reply is stored, so the bot never talks over a person: a reply
    generated before a takeover is stored as discarded and never delivered."""
    lock = f"reply-lock:{message_id}"
    if not cache.add(lock, 1, timeout=180):
        logger.info("reply for message %s is already being generated", message_id)
        return None
    try:
        with reply_scoped():
            return _reply_generate(message_id, reply_channel, reply_deltas)
    finally:
        cache.delete(lock)


def _reply_generate(
    message_id: int, reply_channel: str | None, reply_deltas: bool
) -> Message | None:
    # The message, its conversation and its reply row if there is one, in one query.
    visitor = Message.objects.select_related("conversation", "reply").get(pk=message_id)
    conversation = visitor.conversation
    try:
        reply: Message | None = visitor.reply
    except Message.DoesNotExist:
        reply = None
    if reply is not None and reply.status != Message.Status.GENERATING:
        _republish(reply, reply_channel)
        return reply
    if reply is None:
        ReplyHooks.run(ReplyHooks.received, visitor)
        conversation.refresh_from_db(fields=["mode"])  # a hook may hand the conversation off
    if conversation.mode not in Conversation.BOT_ANSWERS:
        if reply_channel:
            publisher = Publisher(group="", reply_channel=reply_channel, message_id=0)
            aio.run(publisher.discarded(conversation.mode))
        return None
    if reply is None and visitor.channel in BURST_CHANNELS and _burst_continues(visitor):
        return None  # a later message of the same burst is answered, with this one in view
    company = connection.tenant  # type: ignore[attr-defined]
    config = assistant_config_get(company_name=company.name)
    for configure in ReplyHooks.configure:
        try:
            config = configure(config, conversation)
        except Exception:
            if ReplyHooks.strict:
                raise
            logger.exception("reply hook %s failed", getattr(configure, "__name__", configure))
    if reply is None:
        # Looked up above: created here without a second read (a concurrent run that got
        # past the lock's expiry creates it first, and this one uses that row).
        try:
            with transaction.atomic():
                reply = Message.objects.create(
                    reply_to=visitor,
                    conversation=conversation,
                    channel=visitor.channel,
                    role=Message.Role.ASSISTANT,
                    status=Message.Status.GENERATING,
                )
        except IntegrityError:
            reply = Message.objects.get(reply_to=visitor)
    history = _history(visitor)
    force_offline = "budget_exhausted" if budget_exhausted(config) else ""
    ReplyHooks.run(ReplyHooks.starting, conversation)
    publisher = Publisher(
        group=conversation_group(connection.schema_name, conversation.pk),  # type: ignore[attr-defined]
        reply_channel=reply_channel,
        message_id=reply.pk,
        reply_deltas=reply_deltas,
    )
    decided = next((text for text in ReplyHooks.run(ReplyHooks.answer, visitor) if text), None)
    if decided is None:
        known: frozenset[str] = frozenset().union(*ReplyHooks.run(ReplyHooks.known, conversation))
        messages = messages_compose(config, history, visitor.text, conversation.pk)
    _REPLY_SCOPE.set(None)  # what the hooks shared may change from here on
    if decided is not None:
        result = aio.run(_decided_reply(decided, publisher))
    else:
        result = aio.run(
            reply_generate_async(
                config=config,
                messages=messages,
                offline_context=OfflineContext(
                    profile=config.offline_profile(known_fields=known),
                    history=history,
                    message=visitor.text,
                ),
                publisher=publisher,
                force_offline_reason=force_offline,
            )
        )
    reply = reply_store(reply=reply, result=result, budget_exhausted=bool(force_offline))
    if reply.status == Message.Status.DISCARDED:
        mode = Conversation.objects.filter(pk=conversation.pk).values_list("mode", flat=True)
        aio.run(publisher.discarded(mode.first() or Conversation.Mode.HUMAN))
    else:
        aio.run(publisher.completed(reply_summary(reply)))
        ReplyHooks.run(ReplyHooks.generated, reply, result)
        ReplyHooks.run(ReplyHooks.stored, reply)
    return reply


async def _decided_reply(text: str, publisher: Publisher) -> GenerationResult:
    """A reply a hook decided (no model call), streamed like any other."""
    started = time.monotonic()
    await publisher.delta(text)
    await publisher.flush()
    elapsed = int((time.monotonic() - started) * 1000)
    return GenerationResult(
        text=text, provider="offline", model="offline", ttft_ms=elapsed, latency_ms=elapsed,
        offline_intent="decided",
    )  # fmt: skip


def _burst_continues(visitor: Message) -> bool:
    return Message.objects.filter(
        conversation_id=visitor.conversation_id, role=Message.Role.VISITOR, id__gt=visitor.pk
    ).exists()


@transaction.atomic
def reply_store(*, reply: Message, result: GenerationResult, budget_exhausted: bool) -> Message:
    """Store the generated reply with its usage and cost, count it in the month's usage and
    emit its analytics event; discard it if a person took the conversation meanwhile."""
    conversation = Conversation.objects.select_for_update().get(pk=reply.conversation_id)
    now = timezone.now()
    if conversation.mode not in Conversation.BOT_ANSWERS:
        status = Message.Status.DISCARDED
    elif result.refused:
        status = Message.Status.REFUSED
    else:
        status = Message.Status.COMPLETED
    fields = {
        "text": result.text,
        "provider": result.provider,
        "model": result.model,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "cost": usage_cost(result.model, result.usage.input_tokens, result.usage.output_tokens),
        "ttft_ms": result.ttft_ms,
        "latency_ms": result.latency_ms,
        "fallback": result.fallback,
        "error": result.error,
        "intent": result.offline_intent[:16],
        "completed_at": now,
        "status": status,
    }
    # Conditional on "generating": only one run stores the reply.
    if not Message.objects.filter(pk=reply.pk, status=Message.Status.GENERATING).update(**fields):
        reply.refresh_from_db()
        return reply
    for name, value in fields.items():
        setattr(reply, name, value)
    if reply.status == Message.Status.DISCARDED:
        event_emit(kind="reply.discarded", conversation_id=conversation.pk, message_id=reply.pk)
        return reply
    conversation.last_message_at = now
    conversation.save(update_fields=["last_message_at", "updated_at"])
    # The budget counts model tokens: offline answers cost nothing.
    billable = reply.provider != "offline"
    _usage_add(
        input_tokens=reply.input_tokens if billable else 0,
        output_tokens=reply.output_tokens if billable else 0,
        cost=reply.cost,
        replies=1,
    )
    event_emit(
        kind="reply.completed",
        conversation_id=conversation.pk,
        message_id=reply.pk,
        channel=reply.channel,
        provider=reply.provider,
        model=reply.model,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cost=str(reply.cost),
        ttft_ms=reply.ttft_ms,
        latency_ms=reply.latency_ms,
        fallback=reply.fallback,
        error=reply.error,
        refused=result.refused,
    )
    if budget_exhausted:
        event_emit(kind="budget.exhausted", conversation_id=conversation.pk, message_id=reply.pk)
    return reply


def _usage_add(*, input_tokens: int, output_tokens: int, cost: Any, replies: int) -> None:
    month = _month()
    increments = {
        "input_tokens": F("input_tokens") + input_tokens,
        "output_tokens": F("output_tokens") + output_tokens,
        "cost": F("cost") + cost,
        "replies": F("replies") + replies,
    }
    # The month's row exists but for its first count: one UPDATE then.
    if not UsageMonth.objects.filter(month=month).update(**increments):
        UsageMonth.objects.get_or_create(month=month)
        UsageMonth.objects.filter(month=month).update(**increments)


def usage_count(*, model: str, input_tokens: int, output_tokens: int) -> None:
    """Count a model request that is not a reply (e.g. reading a lead) in the month's usage
    and token budget."""
    _usage_add(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=usage_cost(model, input_tokens, output_tokens),
        replies=0,
    )


# Statuses of messages a visitor may see (a discarded reply was never delivered).
VISIBLE_STATUSES = (
    Message.Status.RECEIVED,
    Message.Status.COMPLETED,
    Message.Status.REFUSED,
)


def author_name(user: Any) -> str:
    """How a team member signs their messages to visitors: the first word of their name, else
    the part of the email before the @ (never the whole address)."""
    if user is None:
        return ""
    name = (getattr(user, "name", "") or "").split()
    return name[0] if name else (user.email or "").partition("@")[0]


def conversation_language(conversation: Conversation) -> str:
    """The language to speak to the visitor in: the conversation's, else the company's
    default; "es" or "en"."""
    language = conversation.language or getattr(connection.tenant, "language", "") or "es"  # type: ignore[attr-defined]
    return "en" if language.startswith("en") else "es"


def message_public(message: Message) -> dict[str, Any]:
    """A stored message as a visitor's client sees it (docs/widget.md, "<message>")."""
    client_id = None
    if message.role == Message.Role.VISITOR and message.external_id:
        client_id = message.external_id.partition(":")[2] or None
    author = None
    if message.role == Message.Role.AGENT:
        author = author_name(message.author) or None
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "client_id": client_id,
        "author": author,
    }


def conversation_message_publish(message: Message, *, deliver: bool = True) -> None:
    """After commit: show a message for the visitor (a handoff notice, an agent's message) on
    every open client of the conversation (`conversation.message` to its group) and, with
    `deliver`, send it through messaging channels (`ReplyHooks.stored`)."""
    schema = connection.schema_name  # type: ignore[attr-defined]
    payload = message_public(message)
    conversation_id = message.conversation_id

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            try:
                aio.run(layer.group_send(conversation_group(schema, conversation_id), {
                    "type": "conversation.message", "conversation_id": conversation_id,
                    "message": payload,
                }))  # fmt: skip
            except Exception:
                logger.warning("could not publish message %s", payload["id"])

    transaction.on_commit(send)
    if deliver:
        ReplyHooks.run(ReplyHooks.stored, message)


def bot_message_send(
    *,
    conversation: Conversation,
    text: str,
    intent: str,
    deliver: bool = True,
    activity: bool = True,
) -> Message | None:
    """A message from the assistant that answers no visitor message (a flow's message, a
    follow-up): stored, shown live on the conversation's open clients and, with `deliver`,
    sent through its messaging channel. `activity=False` leaves `last_message_at` alone (a
    follow-up is not the conversation's activity). Returns None, storing nothing, when a
    person has the conversation or it is closed: the bot never talks over a person."""
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.mode not in Conversation.BOT_ANSWERS:
            return None
        now = timezone.now()
        message = Message.objects.create(
            conversation=locked,
            channel=locked.channel,
            role=Message.Role.ASSISTANT,
            text=text,
            status=Message.Status.COMPLETED,
            provider="flow",
            intent=intent,
            completed_at=now,
        )
        if activity:
            Conversation.objects.filter(pk=locked.pk).update(last_message_at=message.created_at)
        event_emit(kind="bot.message", conversation_id=locked.pk, message_id=message.pk,
                   channel=locked.channel, intent=intent)  # fmt: skip
        conversation_message_publish(message, deliver=deliver)
    return message


def conversation_mode_publish(conversation: Conversation) -> None:
    """After commit: tell open clients of the conversation its mode changed."""
    schema = connection.schema_name  # type: ignore[attr-defined]
    conversation_id, mode = conversation.pk, conversation.mode

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            try:
                aio.run(layer.group_send(conversation_group(schema, conversation_id), {
                    "type": "conversation.mode", "conversation_id": conversation_id,
                    "mode": mode,
                }))  # fmt: skip
            except Exception:
                logger.warning("could not publish the mode of conversation %s", conversation_id)

    transaction.on_commit(send)


def conversation_messages_visible(
    conversation: Conversation, *, after: int = 0, limit: int = 50
) -> list[Message]:
    """The visitor-visible messages of a conversation after id `after` (the last `limit`
    when `after` is 0), oldest first."""
    rows = Message.objects.filter(
        conversation=conversation, status__in=VISIBLE_STATUSES
    ).select_related("author")
    if after:
        return list(rows.filter(id__gt=after).order_by("id")[:500])
    latest = list(rows.order_by("-id")[:limit])
    latest.reverse()
    return latest


def reply_in_progress(conversation: Conversation) -> bool:
    return Message.objects.filter(
        conversation=conversation, status=Message.Status.GENERATING
    ).exists()


@dataclass(frozen=True)
class HandoffResult:
    conversation: Conversation
    notice: Message | None  # the system message telling the visitor what happens next
    changed: bool


def handoff_request(*, conversation: Conversation, reason: str, notice_text: str) -> HandoffResult:
    """The visitor (or a rule) asks for a person: a conversation the assistant has goes to
    `pending_human` (the assistant keeps helping until someone takes it), the request is
    recorded on the conversation and as an event, and `notice_text` is stored as a system
    message. Asking again while waiting or with a person changes nothing."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.mode != Conversation.Mode.BOT:
            return HandoffResult(conversation, None, changed=False)
        now = timezone.now()
        conversation.mode = Conversation.Mode.PENDING_HUMAN
        conversation.handoff_requested_at = now
        conversation.context = {
            **conversation.context,
            "handoff": {"requested_at": now.isoformat(), "reason": reason},
        }
        conversation.last_message_at = now
        conversation.save(
            update_fields=["mode", "handoff_requested_at", "context", "last_message_at",
                           "updated_at"]
        )  # fmt: skip
        notice = Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            role=Message.Role.SYSTEM,
            text=notice_text,
            status=Message.Status.COMPLETED,
        )
        event_emit(
            kind="handoff.requested",
            conversation_id=conversation.pk,
            channel=conversation.channel,
            reason=reason,
        )
    return HandoffResult(conversation, notice, changed=True)


def contact_details_update(
    *, channel: str, external_id: str, name: str = "", email: str = "", phone: str = ""
) -> Contact:
    """Fill in what a visitor told about themselves (e.g. the widget's pre-chat form); empty
    values leave what is known."""
    contact, _ = Contact.objects.get_or_create(channel=channel, external_id=external_id)
    fields = {"name": name, "email": email, "phone": phone}
    changed = [
        field for field, value in fields.items() if value and getattr(contact, field) != value
    ]
    for field in changed:
        setattr(contact, field, fields[field])
    if changed:
        contact.save(update_fields=[*changed, "last_seen_at"])
    return contact
