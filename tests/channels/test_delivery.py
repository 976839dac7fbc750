"""Delivering replies, on every channel: long answers in parts at the platform's limit, a reply a
person overtook is never sent, retries (the logic in `deliver`, the task's decision, and eager
end-to-end retries), permanent failures, and no secret in any log line."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from celery.exceptions import Retry
from django.test import Client
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.analytics.models import Event
from apps.audit.services import SYSTEM
from apps.channels import tasks as channel_tasks
from apps.channels.adapters import split_text
from apps.channels.models import ChannelConnection, OutboundMessage
from apps.channels.services import Delivery, channel_disconnect, deliver
from apps.channels.tasks import deliver_task
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import ReplyHooks, reply_generate
from apps.tenants.models import Company
from chapi.logging import RedactSecretsFilter
from tests.channels.conftest import (
    META_SECRET,
    META_TOKEN,
    MODEL_KEY,
    TELEGRAM_TOKEN,
    TWILIO_TOKEN,
    assistant_on,
    chat_requests,
    connect_meta,
    connect_telegram,
    connect_twilio,
    fixture,
    post_meta,
    post_telegram,
    post_twilio,
)
from tests.fakes.meta_server import FakeMeta
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.twilio_server import FakeTwilio

TELEGRAM_CHAT = 5120933746
TWILIO_PERSON = "whatsapp:+573104567890"
META_PERSON = "5215587654321"


@dataclass
class Line:
    """One channel as a person uses it: write to the bot, read what it sent back."""

    kind: str
    channel: ChannelConnection
    limit: int
    write: Callable[[str], Any]
    sent: Callable[[], list[str]]
    requests: Callable[[], int]  # how many send attempts reached the provider


@pytest.fixture(params=["telegram", "whatsapp_twilio", "whatsapp_meta"])
def line(
    request: pytest.FixtureRequest,
    company: Company,
    tg: FakeTelegram,
    tw: FakeTwilio,
    wa: FakeMeta,
    client_public: Client,
) -> Line:
    kind = request.param
    if kind == "telegram":
        channel = connect_telegram(company)
        return Line(
            kind,
            channel,
            4096,
            lambda text: post_telegram(
                client_public, channel, tg.update_text(text, chat_id=TELEGRAM_CHAT)
            ),
            lambda: [s.message["text"] for s in tg.sent(chat_id=TELEGRAM_CHAT)],
            lambda: len([r for r in tg.requests if r.api_method == "sendMessage"]),
        )
    if kind == "whatsapp_twilio":
        channel = connect_twilio(company)
        return Line(
            kind,
            channel,
            1600,
            lambda text: post_twilio(
                client_public, channel, tw.incoming(text, from_=TWILIO_PERSON)
            ),
            lambda: [m.body or "" for m in tw.sent(to=TWILIO_PERSON)],
            lambda: len([r for r in tw.requests if r.path.endswith("/Messages.json")]),
        )
    channel = connect_meta(company)
    return Line(
        kind,
        channel,
        4096,
        lambda text: post_meta(client_public, channel, wa.message_text(text, from_=META_PERSON)),
        lambda: [m.text or "" for m in wa.sent(to=META_PERSON)],
        lambda: len([r for r in wa.requests if r.path.endswith("/messages")]),
    )


def long_text(at_least: int, decorate: bool = False) -> str:
    """Sentences (no paragraph breaks) adding up to `at_least` characters."""
    sentences: list[str] = []
    number = 0
    while sum(len(s) + 1 for s in sentences) < at_least:
        number += 1
        sentence = (
            f"El plan {number} incluye soporte por chat, envíos a todo el país y una garantía"
            f" de {number % 12 + 1} meses sin costo adicional."
        )
        if decorate:
            sentence = f"🎉 {sentence} 🚚🎁"
        sentences.append(sentence)
    return " ".join(sentences)


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# -- long answers in parts ----------------------------------------------------------------------


def test_a_long_answer_is_split_at_the_platforms_limit_on_sentence_boundaries(
    line: Line, company: Company, llm: FakeOpenAI
) -> None:
    assistant_on(company, llm, max_tokens=8000)
    text = long_text(int(line.limit * 2.4))
    llm.queue_reply(text)

    line.write("cuéntame de todos los planes")

    parts = line.sent()
    assert len(parts) == 3
    assert all(len(part) <= line.limit for part in parts)
    assert all(part.endswith(".") for part in parts)  # cut after a sentence, never mid-word
    assert " ".join(parts) == text
    assert parts == split_text(text, line.limit)
    with tenant_context(company):
        stored = list(
            OutboundMessage.objects.order_by("part").values_list("part", "status", "text")
        )
    assert stored == [(index, "sent", part) for index, part in enumerate(parts)]


def test_a_paragraph_break_is_preferred_to_a_sentence_break(
    line: Line, company: Company, llm: FakeOpenAI
) -> None:
    assistant_on(company, llm, max_tokens=8000)
    first = long_text(int(line.limit * 0.6))
    second = long_text(int(line.limit * 0.6))
    llm.queue_reply(f"{first}\n\n{second}")

    line.write("hola")

    assert line.sent() == [first, second]


def test_a_long_telegram_answer_with_emoji_fits_telegrams_utf16_limit(
    company: Company, llm: FakeOpenAI, tg: FakeTelegram, client_public: Client
) -> None:
    # Telegram counts a message's length in UTF-16 code units: an emoji is two.
    assistant_on(company, llm, max_tokens=8000)
    channel = connect_telegram(company)
    text = long_text(9000, decorate=True)
    llm.queue_reply(text)

    post_telegram(client_public, channel, tg.update_text("ofertas?", chat_id=TELEGRAM_CHAT))

    parts = [s.message["text"] for s in tg.sent(chat_id=TELEGRAM_CHAT)]
    with tenant_context(company):
        statuses = list(OutboundMessage.objects.order_by("part").values_list("status", "error"))
    assert all(status == "sent" for status, _ in statuses), statuses
    assert all(utf16(part) <= 4096 for part in parts)
    assert " ".join(parts) == text


def test_split_text_measures_with_the_given_size_and_cuts_hard_only_inside_a_long_word() -> None:
    from apps.channels.adapters.base import utf16_length

    emoji = "😀" * 10 + " " + "😀" * 10  # 21 characters, 41 UTF-16 code units
    assert split_text(emoji, 30) == [emoji]
    assert split_text(emoji, 30, utf16_length) == ["😀" * 10, "😀" * 10]
    assert split_text("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]
    assert split_text("Uno. Dos tres cuatro.", 12) == ["Uno.", "Dos tres", "cuatro."]
    assert split_text("  corto  ", 4096) == ["corto"]
    assert split_text("", 10) == []


# -- the bot never talks over a person ----------------------------------------------------------


def test_a_reply_a_person_overtook_is_discarded_at_send_time(
    line: Line,
    company: Company,
    llm: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def takeover(reply: Message) -> None:
        # A person takes the conversation after the reply was stored, before it is sent.
        Conversation.objects.filter(pk=reply.conversation_id).update(mode=Conversation.Mode.HUMAN)

    monkeypatch.setattr(ReplyHooks, "stored", [takeover, *ReplyHooks.stored])

    line.write("quiero saber los precios")

    assert len(chat_requests(llm)) == 1  # the reply was generated…
    assert line.sent() == [] and line.requests() == 0  # …and never sent
    with tenant_context(company):
        reply = Message.objects.get(role=Message.Role.ASSISTANT)
        assert reply.status == Message.Status.DISCARDED
        assert not OutboundMessage.objects.filter(status="sent").exists()
        assert Event.objects.filter(kind="reply.discarded", message_id=reply.pk).exists()


def test_a_conversation_waiting_for_a_person_is_still_answered(
    company: Company, telegram: ChannelConnection, tg: FakeTelegram, client_public: Client
) -> None:
    post_telegram(client_public, telegram, tg.update_text("hola", chat_id=TELEGRAM_CHAT))
    with tenant_context(company):
        Conversation.objects.update(mode=Conversation.Mode.PENDING_HUMAN)

    post_telegram(client_public, telegram, tg.update_text("¿sigues?", chat_id=TELEGRAM_CHAT))

    assert [s.message["text"] for s in tg.sent(chat_id=TELEGRAM_CHAT)] == [
        "Echo: hola",
        "Echo: ¿sigues?",
    ]


def test_a_person_who_has_the_conversation_gets_no_bot_reply_at_all(
    line: Line, company: Company, llm: FakeOpenAI
) -> None:
    line.write("hola")
    with tenant_context(company):
        Conversation.objects.update(mode=Conversation.Mode.HUMAN)

    line.write("¿me ayudas?")

    assert line.sent() == ["Echo: hola"]
    assert len(chat_requests(llm)) == 1


def test_a_reply_whose_channel_was_disconnected_meanwhile_is_not_sent(
    line: Line, company: Company, held_replies: list[int]
) -> None:
    line.write("hola")
    with tenant_context(company):
        channel_disconnect(channel=ChannelConnection.objects.get(pk=line.channel.pk), actor=SYSTEM)

        reply = reply_generate(message_id=held_replies[0])

        assert reply is not None
        part = OutboundMessage.objects.get(message=reply)
        assert (part.status, part.error) == ("failed", "the channel is disconnected")
    assert line.requests() == 0


# -- bursts on every channel ---------------------------------------------------------------------


def test_a_burst_is_answered_once_with_every_message_in_view(
    line: Line, llm: FakeOpenAI, held_replies: list[int], company: Company
) -> None:
    for text in ["hola", "tengo una tienda", "¿me sirve el plan básico?"]:
        line.write(text)

    with tenant_context(company):
        for message_id in held_replies:
            reply_generate(message_id=message_id)

    [request] = chat_requests(llm)
    users = [m["content"] for m in request.json["messages"] if m["role"] == "user"]
    assert users == ["hola", "tengo una tienda", "¿me sirve el plan básico?"]
    assert line.sent() == ["Echo: ¿me sirve el plan básico?"]


# -- permanent failures ---------------------------------------------------------------------------


BLOCKED = {
    "telegram": ("403_blocked", "Forbidden: bot was blocked by the user"),
    "whatsapp_twilio": ("21610", "Twilio error 21610"),
    "whatsapp_meta": ("131026", "Meta error 131026"),
}


def test_a_person_who_blocked_the_bot_is_not_retried_and_is_marked_unreachable(
    line: Line,
    company: Company,
    tg: FakeTelegram,
    tw: FakeTwilio,
    wa: FakeMeta,
    eager_retries: None,
) -> None:
    fault, error = BLOCKED[line.kind]
    fake: Any = {"telegram": tg, "whatsapp_twilio": tw, "whatsapp_meta": wa}[line.kind]
    fake.queue_fault(fault, times=5)

    line.write("hola")

    assert line.requests() == 1  # no retries, even with retries enabled
    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert (part.status, part.attempts) == ("failed", 1)
        assert part.error.startswith(error)
        assert Contact.objects.get().unreachable is True
        [event] = Event.objects.filter(kind="delivery.failed")
        assert event.data["unreachable"] is True
        assert event.data["error"].startswith(error)
        channel = ChannelConnection.objects.get(pk=line.channel.pk)
        assert channel.last_error.startswith(error) and channel.last_error_at is not None


def test_telegram_chat_not_found_marks_the_contact_unreachable(
    company: Company, telegram: ChannelConnection, tg: FakeTelegram, client_public: Client
) -> None:
    tg.queue_fault("400_chat_not_found")

    post_telegram(client_public, telegram, fixture("telegram_text.json"))

    with tenant_context(company):
        assert OutboundMessage.objects.get().status == "failed"
        assert Contact.objects.get().unreachable is True


def test_writing_again_makes_a_blocked_person_reachable(
    company: Company, telegram: ChannelConnection, tg: FakeTelegram, client_public: Client
) -> None:
    tg.queue_fault("403_blocked")
    post_telegram(client_public, telegram, tg.update_text("hola", chat_id=TELEGRAM_CHAT))
    with tenant_context(company):
        assert Contact.objects.get().unreachable is True

    post_telegram(
        client_public, telegram, tg.update_text("ya te desbloqueé", chat_id=TELEGRAM_CHAT)
    )

    with tenant_context(company):
        assert Contact.objects.get().unreachable is False
    assert [s.message["text"] for s in tg.sent(chat_id=TELEGRAM_CHAT)] == ["Echo: ya te desbloqueé"]


# -- retries end to end (eager, as a worker would) ---------------------------------------------


@pytest.mark.parametrize(
    ("fault", "times", "options"),
    [("429", 1, {"retry_after": 1}), ("500", 2, {}), ("502", 1, {})],
    ids=["429-retry-after", "500-twice", "502-html"],
)
def test_a_passing_telegram_error_is_retried_and_the_answer_delivered(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    client_public: Client,
    eager_retries: None,
    fault: str,
    times: int,
    options: dict[str, Any],
) -> None:
    tg.queue_fault(fault, times=times, **options)  # type: ignore[arg-type]

    post_telegram(client_public, telegram, fixture("telegram_text.json"))

    assert len([r for r in tg.requests if r.api_method == "sendMessage"]) == times + 1
    [sent] = tg.sent(chat_id=TELEGRAM_CHAT)
    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert (part.status, part.attempts, part.error) == ("sent", times + 1, "")
        assert part.provider_message_id == str(sent.message_id)
        assert not Event.objects.filter(kind="delivery.failed").exists()


def test_a_lasting_error_gives_up_after_the_last_attempt(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    client_public: Client,
    eager_retries: None,
    settings: Settings,
) -> None:
    settings.CHANNEL_SEND_MAX_ATTEMPTS = 3
    tg.queue_fault("500", times=10)

    post_telegram(client_public, telegram, fixture("telegram_text.json"))

    assert len([r for r in tg.requests if r.api_method == "sendMessage"]) == 3
    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert (part.status, part.attempts, part.error) == ("failed", 3, "Internal Server Error")
        [event] = Event.objects.filter(kind="delivery.failed")
        assert event.data["unreachable"] is False
        assert Contact.objects.get().unreachable is False


def test_without_eager_retries_the_task_asks_celery_to_retry(
    company: Company, telegram: ChannelConnection, tg: FakeTelegram, client_public: Client
) -> None:
    # tests/conftest.py propagates eager errors: the retry surfaces as celery's Retry, which
    # the reply pipeline's hook logs; the part waits, pending, for the next attempt.
    tg.queue_fault("429", retry_after=4)

    post_telegram(client_public, telegram, fixture("telegram_text.json"))

    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert (part.status, part.attempts) == ("pending", 1)
        assert part.error.startswith("Too Many Requests")
    assert tg.sent() == []


# -- the retry logic of deliver(), attempt by attempt --------------------------------------------


@pytest.fixture
def pending_reply(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    client_public: Client,
    held_replies: list[int],
) -> Iterator[int]:
    """A completed reply in alpha's schema (active), not sent yet."""
    post_telegram(client_public, telegram, fixture("telegram_text.json"))
    with tenant_context(company):
        visitor = Message.objects.get(pk=held_replies[0])
        reply = Message.objects.create(
            conversation=visitor.conversation,
            channel=visitor.channel,
            role=Message.Role.ASSISTANT,
            reply_to=visitor,
            text="El plan anual cuesta 200 USD. ¿Te lo reservo?",
            status=Message.Status.COMPLETED,
        )
        yield reply.pk


def test_a_429_asks_for_the_providers_retry_after(pending_reply: int, tg: FakeTelegram) -> None:
    tg.queue_fault("429", retry_after=7)

    outcome = deliver(pending_reply, attempt=0)

    assert outcome == Delivery(done=False, retry_in=7.0, error="Too Many Requests: retry after 7")
    part = OutboundMessage.objects.get(message_id=pending_reply)
    assert (part.status, part.attempts) == ("pending", 1)

    assert deliver(pending_reply, attempt=1) == Delivery(done=True)
    part.refresh_from_db()
    assert (part.status, part.attempts, part.error) == ("sent", 2, "")
    assert len(tg.sent(chat_id=TELEGRAM_CHAT)) == 1


@pytest.mark.parametrize(("attempt", "wait"), [(0, 1.0), (3, 8.0), (9, 60.0)])
def test_other_errors_back_off_exponentially_up_to_a_minute(
    pending_reply: int, tg: FakeTelegram, settings: Settings, attempt: int, wait: float
) -> None:
    settings.CHANNEL_SEND_MAX_ATTEMPTS = 20
    tg.queue_fault("500")

    outcome = deliver(pending_reply, attempt=attempt)

    assert (outcome.done, outcome.retry_in) == (False, wait)


def test_the_last_attempt_fails_the_reply(
    pending_reply: int, tg: FakeTelegram, settings: Settings
) -> None:
    settings.CHANNEL_SEND_MAX_ATTEMPTS = 4
    tg.queue_fault("500")

    outcome = deliver(pending_reply, attempt=3)

    assert (outcome.done, outcome.retry_in) == (True, None)
    assert OutboundMessage.objects.get(message_id=pending_reply).status == "failed"
    assert Event.objects.filter(kind="delivery.failed", message_id=pending_reply).exists()


def test_a_delivered_reply_is_not_sent_again(pending_reply: int, tg: FakeTelegram) -> None:
    assert deliver(pending_reply) == Delivery(done=True)
    assert deliver(pending_reply, attempt=1) == Delivery(done=True)

    assert len(tg.sent(chat_id=TELEGRAM_CHAT)) == 1


def _reply_in_parts(
    company: Company, channel: ChannelConnection, visitor_id: int, text: str, limit: int
) -> tuple[int, list[str]]:
    """A completed reply to `visitor_id` whose first part was sent by an earlier attempt."""
    parts = split_text(text, limit)
    with tenant_context(company):
        visitor = Message.objects.get(pk=visitor_id)
        reply = Message.objects.create(
            conversation=visitor.conversation,
            channel=visitor.channel,
            role=Message.Role.ASSISTANT,
            reply_to=visitor,
            text=text,
            status=Message.Status.COMPLETED,
        )
        OutboundMessage.objects.bulk_create(
            OutboundMessage(connection_id=channel.pk, message=reply, part=index, text=part)
            for index, part in enumerate(parts)
        )
        OutboundMessage.objects.filter(message=reply, part=0).update(
            status="sent", provider_message_id="earlier", attempts=1
        )
    return reply.pk, parts


def parts_state(company: Company, reply_id: int) -> list[tuple[str, int]]:
    with tenant_context(company):
        rows = OutboundMessage.objects.filter(message_id=reply_id).order_by("part")
        return list(rows.values_list("status", "attempts"))


def test_a_retry_sends_only_the_parts_not_sent_yet(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    client_public: Client,
    held_replies: list[int],
) -> None:
    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))
    reply_id, parts = _reply_in_parts(company, twilio, held_replies[0], long_text(4000), 1600)
    assert len(parts) == 3
    tw.queue_fault("500")

    with tenant_context(company):
        first = deliver(reply_id, attempt=0)
    assert (first.done, first.retry_in) == (False, 1.0)  # part 1 failed; part 2 not tried
    assert parts_state(company, reply_id) == [("sent", 1), ("pending", 1), ("pending", 0)]

    with tenant_context(company):
        assert deliver(reply_id, attempt=1) == Delivery(done=True)
    assert parts_state(company, reply_id) == [("sent", 1), ("sent", 2), ("sent", 1)]
    assert [m.body for m in tw.sent(to=TWILIO_PERSON)] == parts[1:]  # part 0 not again


def test_a_permanent_error_fails_the_rest_of_the_parts(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    client_public: Client,
    held_replies: list[int],
) -> None:
    post_meta(client_public, meta, fixture("meta_text.json"))
    reply_id, parts = _reply_in_parts(company, meta, held_replies[0], long_text(9000), 4096)
    assert len(parts) == 3
    wa.queue_fault("131047")

    with tenant_context(company):
        outcome = deliver(reply_id)
        rows = OutboundMessage.objects.filter(message_id=reply_id).order_by("part")
        errors = list(rows.values_list("status", "error"))

    assert outcome.done is True and outcome.error.startswith("Meta error 131047")
    assert errors[0] == ("sent", "")
    assert errors[1] == ("failed", outcome.error)
    assert errors[2] == ("failed", f"an earlier part failed: {outcome.error}")
    assert wa.sent() == []


# -- the task's retry decision -------------------------------------------------------------------


def test_the_task_retries_with_the_wait_deliver_asks_for(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []

    def fake_deliver(message_id: int, *, attempt: int = 0) -> Delivery:
        calls.append((message_id, attempt))
        return Delivery(done=False, retry_in=7.5, error="Too Many Requests")

    monkeypatch.setattr(channel_tasks, "deliver", fake_deliver)

    with pytest.raises(Retry) as raised:
        deliver_task.apply(args=[41], retries=2)

    assert raised.value.when == 7.5
    assert calls == [(41, 2)]  # the attempt number is the task's retry count


@pytest.mark.parametrize(
    "outcome",
    [
        Delivery(done=True),
        Delivery(done=True, error="discarded"),
        Delivery(done=False, retry_in=None),
    ],
)
def test_the_task_does_not_retry_when_deliver_is_done(
    monkeypatch: pytest.MonkeyPatch, outcome: Delivery
) -> None:
    monkeypatch.setattr(channel_tasks, "deliver", lambda message_id, attempt=0: outcome)

    result = deliver_task.apply(args=[41])

    assert result.successful()


# -- no secret in the logs -------------------------------------------------------------------------


@pytest.fixture
def every_log_line(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """Every record logged (root and `django` loggers, from DEBUG), as the project's configured
    handlers write it (their filters redact what they recognise)."""
    caplog.set_level(logging.DEBUG)
    django_logger = logging.getLogger("django")
    django_logger.addHandler(caplog.handler)
    handlers = [h for h in logging.getLogger().handlers if h is not caplog.handler]
    handlers = [h for h in handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)]
    assert handlers, "the console handler with its redaction filter is configured"

    def lines() -> list[str]:
        written = []
        for record in caplog.records:
            for handler in handlers:
                if handler.filter(record):
                    written.append(handler.format(record))
        return written

    try:
        yield lines
    finally:
        django_logger.removeHandler(caplog.handler)


def test_no_secret_appears_in_any_log_line_during_full_flows(
    company: Company,
    tg: FakeTelegram,
    tw: FakeTwilio,
    wa: FakeMeta,
    llm: FakeOpenAI,
    client_public: Client,
    eager_retries: None,
    every_log_line: Callable[[], list[str]],
) -> None:
    telegram = connect_telegram(company)
    twilio = connect_twilio(company)
    meta = connect_meta(company)
    # Answers, a retry, a permanent failure, refused requests, statuses, a disconnection.
    tg.queue_fault("429", retry_after=1)
    post_telegram(client_public, telegram, fixture("telegram_text.json"))
    post_telegram(client_public, telegram, fixture("telegram_group.json"))
    post_telegram(client_public, telegram, fixture("telegram_text.json"), secret="wrong")
    tw.queue_fault("21610")
    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))
    post_twilio(client_public, twilio, fixture("twilio_inbound_media.json"), signature="bad")
    wa.queue_fault("500")
    post_meta(client_public, meta, fixture("meta_text.json"))
    [sent] = wa.sent()
    post_meta(client_public, meta, wa.status(sent.id, "read"))
    post_meta(client_public, meta, fixture("meta_text.json"), signature="sha256=00")
    client_public.get(
        f"/hooks/meta/{meta.webhook_id}", {"hub.mode": "subscribe", "hub.verify_token": "x"}
    )
    with tenant_context(company):
        tg.queue_fault("500", method="deleteWebhook")
        channel_disconnect(channel=ChannelConnection.objects.get(pk=telegram.pk), actor=SYSTEM)

    lines = every_log_line()
    assert len(lines) > 10
    assert any("[redacted]" in line for line in lines)  # the bot token in the API's URLs
    secrets = {
        "bot token": TELEGRAM_TOKEN,
        "bot token (secret part)": TELEGRAM_TOKEN.partition(":")[2],
        "webhook secret token": telegram.secret_token,
        "Twilio auth token": TWILIO_TOKEN,
        "Meta access token": META_TOKEN,
        "Meta app secret": META_SECRET,
        "Meta verify token": meta.verify_token,
        "model key": MODEL_KEY,
    }
    for name, secret in secrets.items():
        leaks = [line for line in lines if secret in line]
        assert not leaks, f"the {name} is in the logs: {leaks[:2]}"
