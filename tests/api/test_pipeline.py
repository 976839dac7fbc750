"""The reply pipeline in-process, through the real openai SDK against a local FakeOpenAI.

`message_receive(generate=False)` stores a visitor message, `reply_generate(message_id=...)`
answers it, both in alpha's schema inside the test's (rolled back) transaction. Retries,
fallbacks and timings run for real, with short backoff and read timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.analytics.models import Event
from apps.assistants import tokens
from apps.assistants.models import AssistantProfile, Provider
from apps.assistants.offline import Turn, offline_reply
from apps.assistants.pricing import usage_cost
from apps.assistants.prompting import assistant_config_load
from apps.assistants.services import assistant_profile_get
from apps.conversations import services
from apps.conversations.generation import REFUSALS
from apps.conversations.models import Channel, Conversation, Message, UsageMonth
from apps.conversations.realtime import conversation_group
from apps.conversations.services import Received, message_receive, reply_generate
from apps.tenants.models import Company
from tests.api.conftest import chat_requests, moderation_requests, provider_key
from tests.fakes.openai_server import FakeOpenAI, prompt_token_count, split_pieces

SECRET = provider_key("pipeline-alpha")
MODEL = "gpt-4o-mini"
QUESTION = "Hola, quiero saber el precio del plan anual"
ECHO = f"Echo: {QUESTION}"
READ_TIMEOUT = 0.3
MICRO = Decimal("0.000001")


def _close_model_clients() -> None:
    # The provider caches one SDK client per event loop, key and endpoint, built with the
    # timeouts in force at the time: drop them so each test's settings apply.
    from apps.assistants.providers import openai as openai_provider

    openai_provider.clients_close()


@pytest.fixture(autouse=True)
def _quick_retries(settings: Settings) -> Iterator[None]:
    settings.OPENAI_API_KEY = ""
    settings.LLM_BACKOFF_BASE_SECONDS = 0.01
    settings.LLM_READ_TIMEOUT = READ_TIMEOUT
    settings.LLM_CONNECT_TIMEOUT = 1.0
    settings.LLM_MAX_ATTEMPTS = 3
    settings.LLM_RETRY_BUDGET_SECONDS = 20.0
    settings.LLM_RETRY_AFTER_CAP_SECONDS = 10.0
    _close_model_clients()
    yield
    _close_model_clients()


@pytest.fixture
def company(alpha: Company, fake: FakeOpenAI) -> Iterator[Company]:
    """alpha, its schema active, its assistant on the fake with its own key."""
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.provider = Provider.AUTO
        profile.api_base_url = fake.base_url
        profile.api_key = SECRET
        profile.model = ""
        profile.save()
        yield alpha


def profile_update(**changes: Any) -> AssistantProfile:
    profile = assistant_profile_get()
    for name, value in changes.items():
        setattr(profile, name, value)
    profile.save()
    return profile


def receive(text: str = QUESTION, session: str = "visitor-1", **options: Any) -> Received:
    return message_receive(
        channel=Channel.API, session_id=session, text=text, generate=False, **options
    )


def answer(received: Received) -> Message:
    reply = reply_generate(message_id=received.message.pk)
    assert reply is not None
    reply.refresh_from_db()
    return reply


def offline_answer(company: Company, text: str, history: list[Turn] | None = None) -> str:
    config = assistant_config_load(profile=assistant_profile_get(), company_name=company.name)
    return offline_reply(config.offline_profile(), history or [], text).text


def events_of(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind).order_by("id"))


def month_usage() -> UsageMonth | None:
    return UsageMonth.objects.filter(month=timezone.now().date().replace(day=1)).first()


def listen(
    message: Message, work: Callable[[], Any], *, quiet: float = 0.3
) -> tuple[Any, list[dict[str, Any]]]:
    """Run `work` (on this thread, in the test's transaction) while subscribed to the
    conversation's group; return its result and the events the group received."""
    group = conversation_group(connection.schema_name, message.conversation_id)

    async def run() -> tuple[Any, list[dict[str, Any]]]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            result = await sync_to_async(work)()
            events: list[dict[str, Any]] = []
            while True:
                try:
                    event = await asyncio.wait_for(layer.receive(channel), timeout=quiet)
                except TimeoutError:
                    return result, events
                events.append(event)
        finally:
            await layer.group_discard(group, channel)

    return async_to_sync(run)()


def text_after_last_reset(events: list[dict[str, Any]]) -> str:
    kinds = [event["type"] for event in events]
    start = len(kinds) - kinds[::-1].index("reply.reset") if "reply.reset" in kinds else 0
    return "".join(e["text"] for e in events[start:] if e["type"] == "reply.delta")


# -- a streamed answer ------------------------------------------------------------------------


def test_a_streamed_answer_is_stored_with_its_usage_cost_and_timings(
    company: Company, fake: FakeOpenAI
) -> None:
    fake.latency_ms = 60
    fake.tokens_per_second = 100
    text = "Claro: el plan anual cuesta 200 dólares y se paga una vez al año."
    fake.queue_reply(text)
    received = receive()

    reply = answer(received)

    [request] = chat_requests(fake)
    body = request.json
    assert request.api_key == SECRET
    assert body["model"] == MODEL
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 2000
    assert body["temperature"] == 0.7
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][-1]["content"] == QUESTION
    pieces = len(split_pieces(text))
    assert reply.reply_to_id == received.message.pk
    assert reply.conversation_id == received.conversation.pk
    assert (reply.role, reply.status, reply.channel) == ("assistant", "completed", "api")
    assert reply.text == text
    assert (reply.provider, reply.model, reply.fallback, reply.error) == (
        "openai",
        MODEL,
        False,
        "",
    )
    assert reply.input_tokens == prompt_token_count(body["messages"])
    assert reply.output_tokens == pieces
    expected_cost = usage_cost(MODEL, reply.input_tokens, reply.output_tokens)
    assert expected_cost > 0
    assert abs(reply.cost - expected_cost) <= MICRO / 2
    # First byte after 60 ms; then one piece every 10 ms.
    assert reply.ttft_ms is not None and reply.ttft_ms >= 60
    assert reply.latency_ms is not None
    assert reply.latency_ms >= reply.ttft_ms + (pieces - 1) * 9
    assert reply.completed_at is not None
    usage = month_usage()
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.replies) == (
        reply.input_tokens,
        reply.output_tokens,
        1,
    )
    assert usage.cost == reply.cost
    [event] = events_of("reply.completed")
    assert event.message_id == reply.pk
    assert event.data["provider"] == "openai"
    assert event.data["fallback"] is False
    assert event.data["error"] == ""
    assert event.data["input_tokens"] == reply.input_tokens
    conversation = Conversation.objects.get(pk=received.conversation.pk)
    assert conversation.last_message_at == reply.completed_at


def test_the_conversation_group_gets_deltas_then_one_completed_event(
    company: Company, fake: FakeOpenAI
) -> None:
    fake.tokens_per_second = 60  # a piece every ~17 ms: deltas are batched every 40 ms
    text = "Tenemos tres planes: básico, profesional y empresa, todos con soporte incluido."
    fake.queue_reply(text)
    received = receive()

    reply, events = listen(received.message, lambda: answer(received))

    kinds = [event["type"] for event in events]
    assert kinds[-1] == "reply.completed"
    assert kinds.count("reply.completed") == 1
    assert set(kinds[:-1]) == {"reply.delta"}
    assert len(kinds) >= 3  # several deltas: the answer streams
    assert all(event["message_id"] == reply.pk for event in events)
    assert "".join(event["text"] for event in events[:-1]) == text
    assert events[-1] == {
        "type": "reply.completed",
        "message_id": reply.pk,
        "conversation_id": received.conversation.pk,
        "created_at": reply.created_at.isoformat(),
        "text": text,
        "status": "completed",
        "fallback": False,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cost": str(reply.cost),
            "model": MODEL,
            "provider": "openai",
        },
    }


# -- history ------------------------------------------------------------------------------------


def test_the_second_message_is_sent_with_the_first_exchange(
    company: Company, fake: FakeOpenAI
) -> None:
    fake.queue_reply("El plan anual cuesta 200 dólares.")
    fake.queue_reply("Sí, incluye soporte por WhatsApp.")
    first = answer(receive(QUESTION))

    second = answer(receive("¿Incluye soporte?"))

    first_request, second_request = chat_requests(fake)
    assert first_request.json["messages"][1:] == [{"role": "user", "content": QUESTION}]
    assert second_request.json["messages"][0] == first_request.json["messages"][0]
    assert second_request.json["messages"][1:] == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "El plan anual cuesta 200 dólares."},
        {"role": "user", "content": "¿Incluye soporte?"},
    ]
    assert first.conversation_id == second.conversation_id
    assert second.text == "Sí, incluye soporte por WhatsApp."


def test_a_long_history_is_trimmed_to_the_token_window(company: Company, fake: FakeOpenAI) -> None:
    profile_update(history_token_limit=200)
    received = receive("primer mensaje")
    conversation = received.conversation
    # 20 earlier exchanges of 20 short words each: 24 tokens per message by the counter.
    for turn in range(40):
        role = Message.Role.VISITOR if turn % 2 == 0 else Message.Role.ASSISTANT
        Message.objects.create(
            conversation=conversation,
            channel=Channel.API,
            role=role,
            text=f"t{turn:02d} " + "uno dos " * 9 + "fin",
            status=Message.Status.RECEIVED if turn % 2 == 0 else Message.Status.COMPLETED,
        )
    assert tokens.count_message_tokens("t00 " + "uno dos " * 9 + "fin") == 24
    new = receive("¿y ahora?")  # 8 tokens: 192 left for history, 8 messages of 24

    answer(new)

    sent = chat_requests(fake)[-1].json["messages"]
    assert len(sent) == 1 + 8 + 1
    assert sent[0]["role"] == "system"
    assert [m["content"][:3] for m in sent[1:-1]] == [f"t{turn}" for turn in range(32, 40)]
    assert [m["role"] for m in sent[1:-1]] == ["user", "assistant"] * 4
    assert sent[-1] == {"role": "user", "content": "¿y ahora?"}
    assert "primer mensaje" not in [m["content"] for m in sent]


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("401", "invalid_api_key"), ("429_quota", "insufficient_quota"), ("400", "bad_request")],
)
def test_a_terminal_provider_error_answers_offline_at_once(
    company: Company, fake: FakeOpenAI, kind: str, reason: str
) -> None:
    fake.queue_fault(kind, times=5)  # type: ignore[arg-type]
    received = receive()
    started = time.monotonic()

    reply = answer(received)

    assert time.monotonic() - started < 2
    assert len(chat_requests(fake)) == 1  # not retried
    assert (reply.status, reply.provider, reply.model) == ("completed", "offline", "offline")
    assert (reply.fallback, reply.error) == (True, reason)
    assert reply.text == offline_answer(company, QUESTION)
    assert reply.text.strip()
    assert reply.cost == 0
    [event] = events_of("reply.completed")
    assert (event.data["fallback"], event.data["error"]) == (True, reason)


RETRYABLE = [
    pytest.param("429_rate_limit", {"retry_after": 0.2}, "rate_limited", id="429_rate_limit"),
    pytest.param("500", {}, "server_error", id="500"),
    pytest.param("503", {}, "server_error", id="503"),
    pytest.param("cut", {}, "connection_error", id="cut"),
    pytest.param("malformed", {}, "stream_interrupted", id="malformed"),
    pytest.param("hang", {}, "timeout", id="hang"),
    pytest.param("hang", {"after_chunks": 2}, "timeout", id="hang-mid-stream"),
]
# Faults that stream part of the answer first: the listeners are told to drop it.
PARTIAL = {"cut", "malformed", "hang-mid-stream"}


@pytest.mark.parametrize(("kind", "options", "reason"), RETRYABLE)
def test_a_passing_provider_fault_is_retried_and_then_answered(
    company: Company,
    fake: FakeOpenAI,
    request: pytest.FixtureRequest,
    kind: str,
    options: dict[str, Any],
    reason: str,
) -> None:
    fake.queue_fault(kind, **options)  # type: ignore[arg-type]
    received = receive()

    reply, events = listen(received.message, lambda: answer(received))

    first, second = chat_requests(fake)
    assert second.json == first.json
    if kind == "429_rate_limit":
        assert second.timestamp - first.timestamp >= 0.2  # Retry-After honoured
    if kind == "hang":
        assert second.timestamp - first.timestamp >= READ_TIMEOUT
    assert (reply.status, reply.provider, reply.fallback, reply.error) == (
        "completed",
        "openai",
        False,
        "",
    )
    assert reply.text == ECHO  # the partial first attempt is not part of it
    assert reply.output_tokens == len(split_pieces(ECHO))
    kinds = [event["type"] for event in events]
    assert ("reply.reset" in kinds) == (request.node.callspec.id in PARTIAL)
    assert text_after_last_reset(events) == ECHO
    assert kinds[-1] == "reply.completed"
    assert events[-1]["text"] == ECHO


@pytest.mark.parametrize(("kind", "options", "reason"), RETRYABLE)
def test_a_lasting_provider_fault_falls_back_after_the_last_attempt(
    company: Company, fake: FakeOpenAI, kind: str, options: dict[str, Any], reason: str
) -> None:
    options = {"retry_after": 0.05} if kind == "429_rate_limit" else options
    fake.queue_fault(kind, times=10, **options)  # type: ignore[arg-type]
    received = receive()

    reply, events = listen(received.message, lambda: answer(received))

    assert len(chat_requests(fake)) == 3
    assert (reply.status, reply.provider, reply.model) == ("completed", "offline", "offline")
    assert (reply.fallback, reply.error) == (True, reason)
    expected = offline_answer(company, QUESTION)
    assert reply.text == expected
    assert text_after_last_reset(events) == expected
    assert events[-1]["type"] == "reply.completed"
    assert events[-1]["fallback"] is True
    [event] = events_of("reply.completed")
    assert (event.data["fallback"], event.data["error"]) == (True, reason)


def test_a_retry_after_beyond_the_cap_falls_back_without_waiting(
    company: Company, fake: FakeOpenAI
) -> None:
    fake.queue_fault("429_rate_limit", times=3, retry_after=30)
    received = receive()
    started = time.monotonic()

    reply = answer(received)

    assert time.monotonic() - started < 2
    assert len(chat_requests(fake)) == 1
    assert (reply.fallback, reply.error, reply.provider) == (True, "rate_limited", "offline")


def test_without_any_model_key_the_offline_responder_answers_as_normal_operation(
    company: Company, fake: FakeOpenAI
) -> None:
    profile_update(api_key="", api_base_url="")

    reply = answer(receive())

    assert fake.requests == []
    assert (reply.provider, reply.fallback, reply.error) == ("offline", False, "")
    assert reply.text == offline_answer(company, QUESTION)


def test_the_platform_key_never_goes_to_a_company_endpoint(
    company: Company, fake: FakeOpenAI, settings: Settings
) -> None:
    settings.OPENAI_API_KEY = provider_key("the-platform")
    profile_update(api_key="")  # the company's own endpoint (the fake), without a key

    reply = answer(receive())

    [request] = chat_requests(fake)
    assert settings.OPENAI_API_KEY not in repr(request.headers)
    assert (reply.provider, reply.text) == ("openai", ECHO)


def test_a_company_that_chose_the_offline_responder_gets_it_without_a_fallback_flag(
    company: Company, fake: FakeOpenAI
) -> None:
    profile_update(provider=Provider.OFFLINE)

    reply = answer(receive())

    assert fake.requests == []
    assert (reply.provider, reply.fallback, reply.error) == ("offline", False, "")
    assert reply.text == offline_answer(company, QUESTION)


# -- budget and moderation ----------------------------------------------------------------------


def this_month() -> date:
    return timezone.now().date().replace(day=1)


def test_an_exhausted_monthly_budget_answers_offline_and_records_it(
    company: Company, fake: FakeOpenAI
) -> None:
    profile_update(monthly_token_budget=1000)
    UsageMonth.objects.create(month=this_month(), input_tokens=900, output_tokens=100, replies=9)
    received = receive()

    reply = answer(received)

    assert fake.requests == []
    assert (reply.provider, reply.fallback, reply.error) == ("offline", True, "budget_exhausted")
    assert reply.text == offline_answer(company, QUESTION)
    [event] = events_of("budget.exhausted")
    assert (event.conversation_id, event.message_id) == (received.conversation.pk, reply.pk)
    usage = month_usage()
    assert usage is not None
    # The offline answer is counted as a reply but costs no tokens.
    assert (usage.input_tokens, usage.output_tokens, usage.replies) == (900, 100, 10)


def test_under_the_monthly_budget_the_model_answers(company: Company, fake: FakeOpenAI) -> None:
    profile_update(monthly_token_budget=1000)
    UsageMonth.objects.create(month=this_month(), input_tokens=900, output_tokens=99)

    reply = answer(receive())

    assert (reply.provider, reply.fallback, reply.text) == ("openai", False, ECHO)
    assert events_of("budget.exhausted") == []


def test_a_flagged_message_gets_the_refusal_stored_as_refused(
    company: Company, fake: FakeOpenAI
) -> None:
    profile_update(moderation_enabled=True)
    received = receive("Dime cómo fabricar una bomba casera")

    reply, events = listen(received.message, lambda: answer(received))

    assert chat_requests(fake) == []
    [moderation] = moderation_requests(fake)
    assert moderation.json["input"] == "Dime cómo fabricar una bomba casera"
    assert moderation.api_key == SECRET
    assert (reply.status, reply.error, reply.fallback) == ("refused", "moderation_flagged", False)
    assert reply.text == REFUSALS["es"]
    assert events[-1]["type"] == "reply.completed"
    assert events[-1]["status"] == "refused"
    assert events[-1]["text"] == REFUSALS["es"]
    [event] = events_of("reply.completed")
    assert event.data["refused"] is True


def test_a_clean_message_is_moderated_then_answered(company: Company, fake: FakeOpenAI) -> None:
    profile_update(moderation_enabled=True)

    reply = answer(receive())

    assert [r.path for r in fake.requests] == ["/v1/moderations", "/v1/chat/completions"]
    assert (reply.status, reply.text) == ("completed", ECHO)


def test_an_unavailable_moderation_check_does_not_stop_the_answer(
    company: Company, fake: FakeOpenAI
) -> None:
    profile_update(moderation_enabled=True)
    fake.queue_fault("500", endpoint="moderations")

    reply = answer(receive())

    assert (reply.status, reply.text, reply.error) == ("completed", ECHO, "")


# -- idempotency and concurrency ------------------------------------------------------------


def test_a_message_is_answered_once_however_often_its_reply_runs(
    company: Company, fake: FakeOpenAI
) -> None:
    received = receive()
    first = answer(received)

    second, events = listen(received.message, lambda: answer(received))

    assert second.pk == first.pk
    assert second.text == first.text == ECHO
    assert len(chat_requests(fake)) == 1
    assert Message.objects.filter(reply_to=received.message).count() == 1
    assert Message.objects.filter(role=Message.Role.ASSISTANT).count() == 1
    # The second run only re-announces the stored reply.
    assert [event["type"] for event in events] == ["reply.completed"]
    assert events[0]["message_id"] == first.pk
    assert len(events_of("reply.completed")) == 1
    usage = month_usage()
    assert usage is not None and usage.replies == 1


def test_a_reply_row_created_by_a_concurrent_run_is_the_one_filled_in(
    company: Company, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = receive()

    def concurrent_run_creates_the_row(visitor: Message) -> None:
        # Between this run's look-up and its insert, another run created the reply row.
        Message.objects.create(
            reply_to=visitor, conversation_id=visitor.conversation_id, channel=visitor.channel,
            role=Message.Role.ASSISTANT, status=Message.Status.GENERATING,
        )  # fmt: skip

    monkeypatch.setattr(services.ReplyHooks, "received", [concurrent_run_creates_the_row])
    reply = answer(received)

    [row] = Message.objects.filter(reply_to=received.message)
    assert (reply.pk, row.status, row.text) == (row.pk, "completed", ECHO)
    assert len(chat_requests(fake)) == 1


def test_the_same_external_id_is_stored_and_answered_once(
    company: Company, fake: FakeOpenAI
) -> None:
    first = receive(external_id="msg-42")

    second = receive(external_id="msg-42")

    assert first.created is True
    assert second.created is False
    assert second.message.pk == first.message.pk
    assert second.scheduled is None
    assert Message.objects.filter(external_id="msg-42").count() == 1
    assert Message.objects.count() == 1
    assert len(events_of("conversation.started")) == 1
    assert events_of("message.received") == []


def test_a_reply_already_being_generated_elsewhere_is_not_generated_twice(
    company: Company, fake: FakeOpenAI
) -> None:
    received = receive()
    assert cache.add(f"reply-lock:{received.message.pk}", 1, timeout=60)

    assert reply_generate(message_id=received.message.pk) is None

    assert fake.requests == []
    assert not Message.objects.filter(reply_to=received.message).exists()


# -- takeover -----------------------------------------------------------------------------------


def test_a_reply_generated_while_a_person_takes_over_is_discarded_unannounced(
    company: Company, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = receive()
    real_store = services.reply_store

    def take_over_then_store(**kwargs: Any) -> Message:
        # A person takes the conversation after the model streamed its answer, just before
        # the reply is stored.
        Conversation.objects.filter(pk=received.conversation.pk).update(
            mode=Conversation.Mode.HUMAN
        )
        return real_store(**kwargs)

    monkeypatch.setattr(services, "reply_store", take_over_then_store)

    reply, events = listen(received.message, lambda: answer(received))

    assert len(chat_requests(fake)) == 1
    assert reply.status == "discarded"
    assert reply.text == ECHO
    kinds = [event["type"] for event in events]
    assert "reply.delta" in kinds  # it was streaming when the person took over
    assert "reply.completed" not in kinds
    [discarded] = events_of("reply.discarded")
    assert discarded.message_id == reply.pk
    assert events_of("reply.completed") == []
    assert month_usage() is None
    # Back with the bot: the discarded reply is not part of the history the model sees.
    Conversation.objects.filter(pk=received.conversation.pk).update(mode=Conversation.Mode.BOT)
    monkeypatch.setattr(services, "reply_store", real_store)
    answer(receive("¿Sigues ahí?"))
    assert chat_requests(fake)[-1].json["messages"][1:] == [
        {"role": "user", "content": QUESTION},
        {"role": "user", "content": "¿Sigues ahí?"},
    ]


def test_a_conversation_a_person_holds_gets_no_bot_reply(
    company: Company, fake: FakeOpenAI
) -> None:
    received = receive()
    Conversation.objects.filter(pk=received.conversation.pk).update(mode=Conversation.Mode.HUMAN)

    assert reply_generate(message_id=received.message.pk) is None

    assert fake.requests == []
    assert not Message.objects.filter(reply_to=received.message).exists()


# -- secrets ------------------------------------------------------------------------------------


def test_no_secret_reaches_a_log_line_a_stored_message_or_an_event(
    company: Company, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    profile_update(moderation_enabled=True)
    answer(receive("Hola", session="s-ok"))
    fake.queue_fault("401")
    answer(receive("Hola otra vez", session="s-401"))
    fake.queue_fault("500", times=5)
    answer(receive("¿Hay alguien?", session="s-500"))
    fake.queue_fault("hang", times=5, endpoint="moderations")
    answer(receive("¿Y ahora?", session="s-moderation"))

    assert len(caplog.records) > 0
    for record in caplog.records:
        logged = record.getMessage() + (record.exc_text or "") + (record.stack_info or "")
        if record.exc_info:
            logged += logging.Formatter().formatException(record.exc_info)
        assert SECRET not in logged, f"{record.name}: {logged[:200]}"
        assert SECRET[len("sk-test-") :] not in logged
    stored = Message.objects.values_list("text", "error", "provider", "model")
    assert len(stored) == 8
    for row in stored:
        assert SECRET not in " ".join(row)
    for data in Event.objects.values_list("data", flat=True):
        assert SECRET not in repr(data)
