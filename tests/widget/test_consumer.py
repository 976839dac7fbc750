"""The widget's websocket (docs/widget.md, "Protocol"), driven in-process.

Each test is a sync pytest-django test (its data lives in the test's rolled-back transaction)
that runs an async scenario with `async_to_sync`; the consumer's database work comes back to
this thread, so it sees the same transaction. Celery runs eagerly, and `transaction.on_commit`
is patched to run at once (inside the test's transaction it would never fire): the reply task
runs while the consumer schedules it and its events reach the sockets through the channel
layer (Redis), as in production. With no model key, the offline responder answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import time
from typing import Any, TypeVar

import channels.consumer
import channels.db
import channels.generic.websocket
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.db import transaction
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.analytics.models import Event
from apps.assistants.models import Provider
from apps.assistants.services import assistant_profile_get
from apps.audit.services import SYSTEM
from apps.channels.models import WidgetSettings
from apps.conversations.models import Channel, Contact, Conversation, Message
from apps.conversations.services import message_receive
from apps.tenants.models import Company
from apps.tenants.services import company_suspend
from apps.widget.models import WidgetKey
from apps.widget.services import widget_key_create, widget_key_revoke
from chapi import ratelimit
from chapi.asgi import application
from tests.fakes.openai_server import FakeOpenAI

ORIGIN = "https://shop.example.com"
SESSION = "visitor-session-0001"
OTHER_SESSION = "visitor-session-0002"
IP = "198.51.100.7"
WAIT = 5.0  # seconds for a frame that must come
QUIET = 0.3  # seconds of silence that mean nothing more comes

Frame = dict[str, Any]
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _in_the_tests_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    # on_commit never fires inside the test's transaction: run the callbacks at once.
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    # Channels closes "old" connections around consumer handlers; inside the test's
    # transaction that would close the test's own connection (channels' communicator only
    # disables it while a frame is sent or read, not while the consumer runs in between).
    monkeypatch.setattr(channels.db, "close_old_connections", lambda **kwargs: None)
    # Nor hop to this (busy) thread before each handler only to do nothing there.
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", _nothing)
    monkeypatch.setattr(channels.generic.websocket, "aclose_old_connections", _nothing)


async def _nothing() -> None:
    return None


@pytest.fixture
def key_alpha(alpha: Company) -> WidgetKey:
    return widget_key_create(company=alpha, name="Shop", origins=[ORIGIN])


@pytest.fixture
def key_beta(beta: Company) -> WidgetKey:
    return widget_key_create(company=beta, name="Shop", origins=[ORIGIN])


_sockets: list[WebsocketCommunicator] = []


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run `scenario` on a new event loop, then end what it left running while this thread
    still serves the consumers' database calls (after an assertion failed, say): a consumer
    cancelled at the loop's shutdown could wait for this thread forever. The rate limiter
    caches one Redis client per loop id: close this loop's too, or a later loop given the
    same id would inherit a client bound to a dead loop."""

    async def in_loop() -> T:
        try:
            return await scenario()
        finally:
            while _sockets:
                comm = _sockets.pop()
                if not comm.future.done():
                    comm.future.cancel()
                    with contextlib.suppress(BaseException):
                        await asyncio.wait_for(comm.future, WAIT)
            client = ratelimit._ASYNC_CLIENTS.pop(asyncio.get_running_loop(), None)
            if client is not None:
                await client.aclose()

    return async_to_sync(in_loop)()


def socket(key: str, *, origin: str | None = ORIGIN, ip: str = IP) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    comm = WebsocketCommunicator(application, f"/ws/widget/?key={key}", headers=headers)
    comm.scope["client"] = (ip, 50123)
    _sockets.append(comm)
    return comm


async def connected(key: str, **options: Any) -> WebsocketCommunicator:
    comm = socket(key, **options)
    accepted, _subprotocol = await comm.connect(timeout=WAIT)
    assert accepted
    return comm


async def hello(
    comm: WebsocketCommunicator, session: str = SESSION, after: int = 0, **extra: Any
) -> Frame:
    await comm.send_json_to({"type": "hello", "session_id": session, "after": after, **extra})
    ready = await comm.receive_json_from(timeout=WAIT)
    assert ready["type"] == "ready", ready
    return ready


async def opened(
    key: str, session: str = SESSION, after: int = 0, **options: Any
) -> tuple[WebsocketCommunicator, Frame]:
    comm = await connected(key, **options)
    return comm, await hello(comm, session, after)


async def say(comm: WebsocketCommunicator, client_id: str, text: str) -> None:
    await comm.send_json_to({"type": "message", "client_id": client_id, "text": text})


async def until_reply(comm: WebsocketCommunicator) -> list[Frame]:
    """Frames up to and including the next assistant `message`."""
    frames: list[Frame] = []
    while True:
        frame = await comm.receive_json_from(timeout=WAIT)
        frames.append(frame)
        if frame["type"] == "message" and frame["message"]["role"] == "assistant":
            return frames


async def exchange(comm: WebsocketCommunicator, client_id: str, text: str) -> list[Frame]:
    await say(comm, client_id, text)
    return await until_reply(comm)


async def closed(comm: WebsocketCommunicator) -> int:
    """The close code of the next output, which must be a close."""
    output = await comm.receive_output(timeout=WAIT)
    assert output["type"] == "websocket.close", output
    return output["code"]


async def refused(comm: WebsocketCommunicator) -> tuple[Frame, int]:
    """A refused connection: accepted, one error frame, then closed."""
    accepted, _subprotocol = await comm.connect(timeout=WAIT)
    assert accepted
    error = await comm.receive_json_from(timeout=WAIT)
    return error, await closed(comm)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_streamed(frames: list[Frame]) -> str:
    """The reply's deltas chain (each offset is the UTF-16 length of the text before it) and
    add up to the final message's text; returns that text."""
    final = frames[-1]["message"]
    deltas = [f for f in frames if f["type"] == "delta"]
    assert deltas
    shown = ""
    for delta in deltas:
        assert delta["message_id"] == final["id"]
        assert delta["offset"] == utf16_len(shown)
        shown += delta["text"]
    assert shown == final["text"] != ""
    return shown


def stored(company: Company, session: str = SESSION) -> list[Message]:
    with tenant_context(company):
        return list(
            Message.objects.filter(conversation__session_id=session, channel=Channel.WEB)
            .select_related("conversation")
            .order_by("id")
        )


def conversation_of(company: Company, session: str = SESSION) -> Conversation:
    with tenant_context(company):
        return Conversation.objects.get(channel=Channel.WEB, session_id=session)


def widget_settings(company: Company, **fields: Any) -> None:
    with tenant_context(company):
        WidgetSettings.objects.update_or_create(pk=1, defaults=fields)


def web_message(company: Company, text: str, session: str = SESSION) -> Message:
    with tenant_context(company):
        return message_receive(
            channel=Channel.WEB, session_id=session, text=text, generate=False
        ).message


# -- hello, a message, its reply --------------------------------------------------------------


def test_hello_before_any_message_answers_ready_without_a_conversation(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    async def scenario() -> Frame:
        comm, ready = await opened(key_alpha.key)
        assert await comm.receive_nothing(QUIET)
        await comm.disconnect()
        return ready

    ready = run(scenario)

    assert ready == {
        "type": "ready",
        "conversation_id": None,
        "mode": "bot",
        "messages": [],
        "generating": False,
    }
    with tenant_context(alpha):
        # Opening the widget stores nothing.
        assert not Conversation.objects.filter(session_id=SESSION).exists()
        assert not Contact.objects.filter(external_id=SESSION).exists()


def test_a_message_is_echoed_then_streamed_and_answered(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    context = {"page": "https://shop.example.com/pricing", "title": "Pricing", "plan": "pro"}

    async def scenario() -> list[Frame]:
        comm = await connected(key_alpha.key)
        await hello(comm, context=context)
        frames = await exchange(comm, "c-1", "Hola, ¿cuánto cuesta el plan anual?")
        assert await comm.receive_nothing(QUIET)
        await comm.disconnect()
        return frames

    frames = run(scenario)

    echo = frames[0]
    assert echo["type"] == "message"
    assert echo["message"]["role"] == "visitor"
    assert echo["message"]["client_id"] == "c-1"
    assert echo["message"]["text"] == "Hola, ¿cuánto cuesta el plan anual?"
    assert echo["message"]["author"] is None and echo["message"]["created_at"]
    assert [f["type"] for f in frames[1:-1]] == ["delta"] * (len(frames) - 2)
    text = assert_streamed(frames)
    final = frames[-1]["message"]
    assert final["client_id"] is None and final["created_at"]

    visitor, reply = stored(alpha)
    assert (visitor.pk, reply.pk) == (echo["message"]["id"], final["id"])
    assert (visitor.role, visitor.channel, visitor.status) == ("visitor", "web", "received")
    assert visitor.external_id == f"{SESSION}:c-1"
    assert (reply.role, reply.channel, reply.status) == ("assistant", "web", "completed")
    assert reply.reply_to_id == visitor.pk and reply.text == text
    assert reply.provider == "offline"
    conversation = visitor.conversation
    assert (conversation.channel, conversation.mode) == ("web", "bot")
    assert conversation.context == context
    with tenant_context(alpha):
        assert conversation.contact.external_id == SESSION
        assert conversation.contact.channel == "web"


def test_ready_after_a_reconnection_carries_the_conversation(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    async def scenario() -> tuple[list[Frame], Frame]:
        comm, _ready = await opened(key_alpha.key)
        frames = await exchange(comm, "c-1", "Hola")
        await comm.disconnect()
        comm, ready = await opened(key_alpha.key)
        await comm.disconnect()
        return frames, ready

    frames, ready = run(scenario)

    assert ready["conversation_id"] == conversation_of(alpha).pk
    assert (ready["mode"], ready["generating"]) == ("bot", False)
    assert [m["id"] for m in ready["messages"]] == [
        frames[0]["message"]["id"],
        frames[-1]["message"]["id"],
    ]
    assert ready["messages"][0] == frames[0]["message"]  # with its client_id
    # The live reply and the history show the same message.
    assert ready["messages"][1] == frames[-1]["message"]


# -- UTF-16 offsets of a model's streamed reply -------------------------------------------------


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _close_model_clients() -> None:
    from apps.assistants.providers import openai as openai_provider

    openai_provider.clients_close()


@pytest.fixture
def alpha_on_fake_model(
    alpha: Company, fake_model: FakeOpenAI, settings: Settings
) -> Iterator[FakeOpenAI]:
    settings.OPENAI_API_KEY = ""
    settings.LLM_READ_TIMEOUT = 5.0
    settings.LLM_CONNECT_TIMEOUT = 2.0
    fake_model.reset()
    fake_model.latency_ms = 0
    fake_model.tokens_per_second = None
    _close_model_clients()
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.provider = Provider.AUTO
        profile.api_base_url = fake_model.base_url
        profile.api_key = "sk-test-" + "w" * 40
        profile.model = ""
        profile.save()
    yield fake_model
    fake_model.reset()
    fake_model.tokens_per_second = None
    fake_model.latency_ms = 0
    _close_model_clients()


def test_delta_offsets_count_utf16_code_units(
    key_alpha: WidgetKey, alpha: Company, alpha_on_fake_model: FakeOpenAI
) -> None:
    # Astral characters count 2 in JavaScript's string.length, accents 1.
    answer = (
        "¡Claro! 😀 El plan anual 🚀 cuesta 200 € al año; "
        "el mensual 𝄞 cuesta 20 €. Ñandú 👍🏽 listo."
    )
    alpha_on_fake_model.queue_reply(answer)
    alpha_on_fake_model.tokens_per_second = 60  # pieces spread over several deltas

    async def scenario() -> list[Frame]:
        comm, _ready = await opened(key_alpha.key)
        frames = await exchange(comm, "c-1", "¿Precio del plan anual?")
        await comm.disconnect()
        return frames

    frames = run(scenario)

    deltas = [f for f in frames if f["type"] == "delta"]
    assert len(deltas) >= 3
    assert assert_streamed(frames) == answer
    # The offsets differ from Python's code-point lengths once an emoji went by.
    assert any(
        d["offset"] != len("".join(x["text"] for x in deltas[:i])) for i, d in enumerate(deltas)
    )
    [_visitor, reply] = stored(alpha)
    assert (reply.text, reply.provider) == (answer, "openai")


def test_a_retried_model_call_resets_the_partial_reply(
    key_alpha: WidgetKey, alpha: Company, alpha_on_fake_model: FakeOpenAI, settings: Settings
) -> None:
    settings.LLM_BACKOFF_BASE_SECONDS = 0.01
    # The first stream breaks after a few pieces; the retry answers in full.
    alpha_on_fake_model.queue_fault("cut", after_chunks=3)
    alpha_on_fake_model.tokens_per_second = 50
    question = "Hola 😀 ¿cuánto cuesta el plan anual con envío incluido?"

    async def scenario() -> list[Frame]:
        comm, _ready = await opened(key_alpha.key)
        frames = await exchange(comm, "c-1", question)
        await comm.disconnect()
        return frames

    frames = run(scenario)

    kinds = [f["type"] for f in frames]
    assert kinds.count("reset") == 1
    cut = kinds.index("reset")
    final = frames[-1]["message"]
    assert frames[cut] == {"type": "reset", "message_id": final["id"]}
    assert "delta" in kinds[1:cut]  # the broken attempt had shown something
    # After the reset the text starts over at offset 0 and ends as the stored reply.
    assert_streamed(frames[cut + 1 :])
    assert final["text"] == f"Echo: {question}"


def test_a_broker_outage_stores_the_message_and_says_it_will_be_answered(
    key_alpha: WidgetKey, alpha: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.conversations.tasks import reply_generate_task

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(reply_generate_task, "apply_async", broker_down)

    async def scenario() -> list[Frame]:
        comm, _ready = await opened(key_alpha.key)
        await say(comm, "c-1", "Hola")
        frames = [await comm.receive_json_from(timeout=WAIT) for _ in range(2)]
        assert await comm.receive_nothing(QUIET)
        await comm.disconnect()
        return frames

    # The error is sent by the handler itself, the echo comes back through the channel layer
    # once the handler is done: the error arrives first.
    error, echo = run(scenario)

    assert echo["type"] == "message" and echo["message"]["client_id"] == "c-1"
    assert (error["type"], error["code"], error["client_id"]) == ("error", "unavailable", "c-1")
    [visitor] = stored(alpha)
    assert (visitor.role, visitor.external_id) == ("visitor", f"{SESSION}:c-1")


# -- idempotency, history ---------------------------------------------------------------------


def test_the_same_client_id_twice_is_stored_and_answered_once(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    async def scenario() -> tuple[list[Frame], list[Frame]]:
        comm, _ready = await opened(key_alpha.key)
        first = await exchange(comm, "c-1", "Hola")
        await comm.disconnect()
        # The widget resends a message it saw no echo for after a reconnection.
        comm, _ready = await opened(key_alpha.key, after=first[-1]["message"]["id"])
        await say(comm, "c-1", "Hola")
        again = [await comm.receive_json_from(timeout=WAIT) for _ in range(2)]
        assert await comm.receive_nothing(QUIET)  # no deltas: nothing is generated again
        await comm.disconnect()
        return first, again

    first, again = run(scenario)

    assert again[0] == first[0]  # the stored echo, same id and client_id
    assert again[1]["type"] == "message"
    assert again[1]["message"]["id"] == first[-1]["message"]["id"]
    assert again[1]["message"]["text"] == first[-1]["message"]["text"]
    assert [(m.role, m.external_id) for m in stored(alpha)] == [
        ("visitor", f"{SESSION}:c-1"),
        ("assistant", None),
    ]
    with tenant_context(alpha):
        assert Event.objects.filter(kind="reply.completed").count() == 1


def test_the_same_client_id_in_another_session_is_another_message(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    async def scenario() -> None:
        for session in (SESSION, OTHER_SESSION):
            comm, _ready = await opened(key_alpha.key, session)
            await exchange(comm, "c-1", "Hola")
            await comm.disconnect()

    run(scenario)

    assert [m.external_id for m in stored(alpha) if m.role == "visitor"] == [f"{SESSION}:c-1"]
    assert [m.external_id for m in stored(alpha, OTHER_SESSION) if m.role == "visitor"] == [
        f"{OTHER_SESSION}:c-1"
    ]


def test_after_gives_only_newer_messages_and_zero_the_whole_history(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    async def scenario() -> tuple[list[Frame], list[Frame], Frame, Frame]:
        comm, _ready = await opened(key_alpha.key)
        first = await exchange(comm, "c-1", "Hola")
        second = await exchange(comm, "c-2", "¿Tienen envíos a Cali?")
        await comm.disconnect()
        comm, newer = await opened(key_alpha.key, after=first[-1]["message"]["id"])
        await comm.disconnect()
        comm, everything = await opened(key_alpha.key, after=0)
        await comm.disconnect()
        return first, second, newer, everything

    first, second, newer, everything = run(scenario)

    ids = [f["message"]["id"] for f in (first[0], first[-1], second[0], second[-1])]
    assert [m["id"] for m in newer["messages"]] == ids[2:]
    assert [m["id"] for m in everything["messages"]] == ids
    assert [m["client_id"] for m in everything["messages"]] == ["c-1", None, "c-2", None]
    assert newer["conversation_id"] == everything["conversation_id"] == conversation_of(alpha).pk


def test_history_with_after_zero_is_the_last_50_oldest_first(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    ids = [web_message(alpha, f"mensaje {n}").pk for n in range(55)]

    async def scenario() -> Frame:
        comm, ready = await opened(key_alpha.key)
        await comm.disconnect()
        return ready

    ready = run(scenario)

    assert [m["id"] for m in ready["messages"]] == ids[-50:]
    assert ready["messages"][-1]["text"] == "mensaje 54"


def test_ready_says_a_reply_is_being_written_and_hides_its_partial_text(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    visitor = web_message(alpha, "Hola")
    with tenant_context(alpha):
        Message.objects.create(
            conversation=visitor.conversation,
            channel=Channel.WEB,
            role=Message.Role.ASSISTANT,
            status=Message.Status.GENERATING,
            text="Medio escri",
            reply_to=visitor,
        )

    async def scenario() -> Frame:
        comm, ready = await opened(key_alpha.key)
        await comm.disconnect()
        return ready

    ready = run(scenario)

    assert ready["generating"] is True
    assert [m["id"] for m in ready["messages"]] == [visitor.pk]


# -- tabs and visitors ------------------------------------------------------------------------


def test_every_tab_of_a_visitor_gets_the_echo_and_the_reply(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    async def scenario() -> tuple[list[Frame], list[Frame], list[Frame], Frame]:
        one, _ready = await opened(key_alpha.key)
        await exchange(one, "c-1", "Hola")
        two, ready_two = await opened(key_alpha.key)
        from_one = await exchange(one, "c-2", "¿Hacen envíos?")
        seen_by_two = await until_reply(two)
        # And the other way round.
        from_two = await exchange(two, "c-3", "Gracias")
        seen_by_one = await until_reply(one)
        for comm in (one, two):
            assert await comm.receive_nothing(QUIET)
            await comm.disconnect()
        assert seen_by_one == from_two
        return from_one, seen_by_two, from_two, ready_two

    from_one, seen_by_two, from_two, ready_two = run(scenario)

    assert ready_two["conversation_id"] == conversation_of(alpha).pk
    assert seen_by_two[0] == from_one[0]  # the echo with its client_id
    assert seen_by_two[0]["message"]["client_id"] == "c-2"
    assert seen_by_two[-1] == from_one[-1]
    assert_streamed(seen_by_two)
    assert from_two[0]["message"]["client_id"] == "c-3"
    assert len(stored(alpha)) == 6


def test_a_tab_opened_before_the_first_message_sees_it_and_its_reply(
    key_alpha: WidgetKey, alpha: Company, alpha_on_fake_model: FakeOpenAI
) -> None:
    # The other tab joins the new conversation when the echo reaches it; a model answering
    # after 300 ms leaves no doubt that it joined before the reply's first delta.
    alpha_on_fake_model.latency_ms = 300

    async def scenario() -> tuple[list[Frame], list[Frame], list[Frame]]:
        one, ready_one = await opened(key_alpha.key)
        two, ready_two = await opened(key_alpha.key)
        assert ready_one["conversation_id"] is ready_two["conversation_id"] is None
        from_one = await exchange(one, "c-1", "Hola")
        seen_by_two = await until_reply(two)
        # Tab two has joined the conversation: the next reply streams to it too.
        later = await exchange(one, "c-2", "¿Hacen envíos?")
        later_by_two = await until_reply(two)
        assert later_by_two == later
        for comm in (one, two):
            assert await comm.receive_nothing(QUIET)
            await comm.disconnect()
        return from_one, seen_by_two, later_by_two

    from_one, seen_by_two, later_by_two = run(scenario)

    assert seen_by_two == from_one
    assert_streamed(seen_by_two)
    assert_streamed(later_by_two)


def test_another_visitor_receives_nothing_of_the_first(key_alpha: WidgetKey) -> None:
    async def scenario() -> None:
        first, _ready = await opened(key_alpha.key)
        await exchange(first, "c-1", "Hola")
        other, ready = await opened(key_alpha.key, OTHER_SESSION)
        assert ready["conversation_id"] is None and ready["messages"] == []
        await exchange(first, "c-2", "¿Hacen envíos?")
        await first.send_json_to({"type": "handoff"})
        assert (await first.receive_json_from(timeout=WAIT))["type"] == "mode"
        assert (await first.receive_json_from(timeout=WAIT))["type"] == "message"
        assert await other.receive_nothing(QUIET)
        await first.disconnect()
        await other.disconnect()

    run(scenario)


def test_companies_are_isolated_even_with_the_same_session_and_conversation_id(
    key_alpha: WidgetKey, key_beta: WidgetKey, alpha: Company, beta: Company
) -> None:
    ours = web_message(alpha, "Hola desde alpha").conversation
    with tenant_context(beta):
        # The same session id and, in beta's own schema, the same conversation id.
        theirs = Conversation.objects.create(
            pk=ours.pk,
            contact=Contact.objects.create(channel=Channel.WEB, external_id=SESSION),
            channel=Channel.WEB,
            session_id=SESSION,
        )

    async def scenario() -> tuple[list[Frame], list[Frame]]:
        a, ready_a = await opened(key_alpha.key)
        b, ready_b = await opened(key_beta.key)
        assert ready_a["conversation_id"] == ready_b["conversation_id"] == ours.pk
        assert [m["text"] for m in ready_a["messages"]] == ["Hola desde alpha"]
        assert ready_b["messages"] == []
        from_b = await exchange(b, "c-1", "Hola desde beta")
        assert await a.receive_nothing(QUIET)
        from_a = await exchange(a, "c-1", "Otra vez alpha")
        await a.send_json_to({"type": "handoff"})
        await a.receive_json_from(timeout=WAIT)
        await a.receive_json_from(timeout=WAIT)
        assert await b.receive_nothing(QUIET)
        await a.disconnect()
        await b.disconnect()
        return from_a, from_b

    from_a, from_b = run(scenario)

    assert_streamed(from_a)
    assert_streamed(from_b)
    in_beta = stored(beta)
    assert [m.role for m in in_beta] == ["visitor", "assistant"]
    assert in_beta[0].text == "Hola desde beta"
    assert [m.text for m in stored(alpha)][:2] == ["Hola desde alpha", "Otra vez alpha"]
    assert theirs.pk == ours.pk


def test_a_beta_key_cannot_read_alphas_conversation_of_that_session(
    key_alpha: WidgetKey, key_beta: WidgetKey, alpha: Company, beta: Company
) -> None:
    web_message(alpha, "Mi número de póliza es 12345")

    async def scenario() -> Frame:
        comm, ready = await opened(key_beta.key)
        await comm.disconnect()
        return ready

    ready = run(scenario)

    assert ready["conversation_id"] is None
    assert ready["messages"] == []
    with tenant_context(beta):
        assert not Conversation.objects.exists()


# -- who may connect --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://shop.example.com",  # another scheme is another origin
        "https://shop.example.com:8443",
        "https://shop.example.com.evil.example",
        "http://beta.localhost:8000",  # another company's host
        "null",
    ],
)
def test_an_origin_the_key_does_not_allow_is_refused(key_alpha: WidgetKey, origin: str) -> None:
    async def scenario() -> tuple[Frame, int]:
        comm = socket(key_alpha.key, origin=origin)
        result = await refused(comm)
        await comm.disconnect()
        return result

    error, code = run(scenario)

    assert error["type"] == "error" and error["code"] == "origin_not_allowed"
    assert code == 4403


def test_a_connection_without_origin_is_refused(key_alpha: WidgetKey) -> None:
    async def scenario() -> tuple[Frame, int]:
        comm = socket(key_alpha.key, origin=None)
        result = await refused(comm)
        await comm.disconnect()
        return result

    error, code = run(scenario)

    assert (error["code"], code) == ("origin_not_allowed", 4403)


@pytest.mark.parametrize("origin", ["http://alpha.localhost:8000", "https://alpha.localhost"])
def test_the_companys_own_host_is_allowed(key_alpha: WidgetKey, origin: str) -> None:
    async def scenario() -> Frame:
        comm, ready = await opened(key_alpha.key, origin=origin)
        await comm.disconnect()
        return ready

    assert run(scenario)["type"] == "ready"


@pytest.mark.parametrize("debug", [True, False])
def test_localhost_is_allowed_only_in_development(
    key_alpha: WidgetKey, settings: Settings, debug: bool
) -> None:
    settings.DEBUG = debug

    async def scenario() -> list[Frame | int]:
        results: list[Frame | int] = []
        for origin in ("http://localhost:5173", "http://127.0.0.1:8080"):
            comm = socket(key_alpha.key, origin=origin)
            await comm.connect(timeout=WAIT)
            await comm.send_json_to({"type": "ping"})
            frame = await comm.receive_json_from(timeout=WAIT)
            results.append(frame)
            if frame["type"] == "error":
                results.append(await closed(comm))
            await comm.disconnect()
        return results

    results = run(scenario)

    if debug:
        assert results == [{"type": "pong"}, {"type": "pong"}]
    else:
        assert [r["code"] if isinstance(r, dict) else r for r in results] == [
            "origin_not_allowed",
            4403,
            "origin_not_allowed",
            4403,
        ]


@pytest.mark.parametrize("key", ["pk_doesnotexist", "", "sk_live_123", "pk_" + "x" * 60])
def test_an_unknown_key_is_refused(db: None, key: str) -> None:
    async def scenario() -> tuple[Frame, int]:
        comm = socket(key)
        result = await refused(comm)
        await comm.disconnect()
        return result

    error, code = run(scenario)

    assert (error["type"], error["code"], code) == ("error", "unknown_widget_key", 4401)


def test_a_revoked_key_is_refused(key_alpha: WidgetKey) -> None:
    widget_key_revoke(widget_key=key_alpha, actor=SYSTEM)

    async def scenario() -> tuple[Frame, int]:
        comm = socket(key_alpha.key)
        result = await refused(comm)
        await comm.disconnect()
        return result

    error, code = run(scenario)

    assert (error["code"], code) == ("revoked_widget_key", 4401)


def test_revoking_a_key_closes_its_open_connections(key_alpha: WidgetKey, alpha: Company) -> None:
    other_key = widget_key_create(company=alpha, name="Blog", origins=[ORIGIN])

    async def scenario() -> None:
        one, _ready = await opened(key_alpha.key)
        two = await connected(key_alpha.key)  # not even said hello yet
        unrelated, _ready = await opened(other_key.key)
        await sync_to_async(widget_key_revoke)(widget_key=key_alpha, actor=SYSTEM)
        for comm in (one, two):
            error = await comm.receive_json_from(timeout=WAIT)
            assert (error["type"], error["code"]) == ("error", "revoked_widget_key")
            assert await closed(comm) == 4401
            await comm.disconnect()
        # Another key of the company keeps working.
        await unrelated.send_json_to({"type": "ping"})
        assert await unrelated.receive_json_from(timeout=WAIT) == {"type": "pong"}
        await unrelated.disconnect()

    run(scenario)


def test_a_suspended_companys_key_is_refused(key_alpha: WidgetKey, alpha: Company) -> None:
    company_suspend(company=alpha, actor=SYSTEM, reason="unpaid")

    async def scenario() -> tuple[Frame, int]:
        comm = socket(key_alpha.key)
        result = await refused(comm)
        await comm.disconnect()
        return result

    error, code = run(scenario)

    assert (error["code"], code) == ("company_suspended", 4401)


def test_connections_per_ip_are_limited(key_alpha: WidgetKey, settings: Settings) -> None:
    settings.WIDGET_CONNECTIONS_PER_IP = 2

    async def scenario() -> None:
        # Each ready frame says that connection was counted (the count follows the accept).
        comms = [(await opened(key_alpha.key))[0] for _ in range(2)]
        third = socket(key_alpha.key)
        error, code = await refused(third)
        assert (error["type"], error["code"], code) == ("error", "rate_limited", 4429)
        assert 1 <= error["retry_after"] <= 60
        await third.disconnect()
        # Another client IP is not affected, nor the connections already open.
        elsewhere, _ready = await opened(key_alpha.key, ip="203.0.113.9")
        for comm in [*comms, elsewhere]:
            await comm.send_json_to({"type": "ping"})
            assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}
            await comm.disconnect()

    run(scenario)


# -- the protocol -----------------------------------------------------------------------------

_HELLO = {"type": "hello", "session_id": SESSION, "after": 0}


@pytest.mark.parametrize(
    ("frames", "binary"),
    [
        pytest.param(["not json"], False, id="not-json"),
        pytest.param(["[1, 2]"], False, id="not-an-object"),
        pytest.param(['{"text": "hola"}'], False, id="no-type"),
        pytest.param(
            [{"type": "message", "client_id": "c-1", "text": "Hola"}], False, id="no-hello"
        ),
        pytest.param([{"type": "prechat", "email": "a@b.co"}], False, id="prechat-first"),
        pytest.param([_HELLO, {"type": "subscribe"}], False, id="unknown-type"),
        pytest.param([{**_HELLO, "session_id": "short"}], False, id="short-session"),
        pytest.param([{**_HELLO, "session_id": "a session with spaces"}], False, id="bad-session"),
        pytest.param([{**_HELLO, "session_id": 12345678}], False, id="numeric-session"),
        pytest.param([{**_HELLO, "after": -1}], False, id="negative-after"),
        pytest.param([{**_HELLO, "after": "3"}], False, id="text-after"),
        pytest.param([{**_HELLO, "after": True}], False, id="boolean-after"),
        pytest.param([_HELLO, {**_HELLO, "session_id": OTHER_SESSION}], False, id="two-sessions"),
        pytest.param(
            [_HELLO, {"type": "message", "client_id": "c 1", "text": "x"}],
            False,
            id="bad-client-id",
        ),
        pytest.param([_HELLO, {"type": "message", "text": "x"}], False, id="no-client-id"),
        pytest.param([b"\x00\x01"], True, id="binary-frame"),
    ],
)
def test_protocol_errors_close_with_4400(
    key_alpha: WidgetKey, alpha: Company, frames: list[Any], binary: bool
) -> None:
    async def scenario() -> tuple[Frame, int]:
        comm = await connected(key_alpha.key)
        for frame in frames:
            if binary:
                await comm.send_to(bytes_data=frame)
            elif isinstance(frame, str):
                await comm.send_to(text_data=frame)
            else:
                await comm.send_json_to(frame)
            if frame is _HELLO:
                assert (await comm.receive_json_from(timeout=WAIT))["type"] == "ready"
        error = await comm.receive_json_from(timeout=WAIT)
        code = await closed(comm)
        await comm.disconnect()
        return error, code

    error, code = run(scenario)

    assert error["type"] == "error" and error["code"] == "protocol_error"
    assert error["message"]
    assert code == 4400
    assert stored(alpha) == []


def test_a_frame_over_32_kb_closes_with_1009(key_alpha: WidgetKey, alpha: Company) -> None:
    async def scenario() -> int:
        comm, _ready = await opened(key_alpha.key)
        text = "a" * (32 * 1024)
        await comm.send_json_to({"type": "message", "client_id": "c-1", "text": text})
        code = await closed(comm)
        await comm.disconnect()
        return code

    assert run(scenario) == 1009
    assert stored(alpha) == []


def test_ping_answers_pong_before_and_after_hello(key_alpha: WidgetKey) -> None:
    async def scenario() -> None:
        comm = await connected(key_alpha.key)
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}
        await hello(comm)
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}
        assert await comm.receive_nothing(QUIET)
        await comm.disconnect()

    run(scenario)


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x00", None, 42, ["Hola"]])
def test_an_empty_message_is_invalid_and_the_connection_stays_open(
    key_alpha: WidgetKey, alpha: Company, text: Any
) -> None:
    async def scenario() -> Frame:
        comm, _ready = await opened(key_alpha.key)
        await comm.send_json_to({"type": "message", "client_id": "c-1", "text": text})
        error = await comm.receive_json_from(timeout=WAIT)
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}
        await comm.disconnect()
        return error

    error = run(scenario)

    assert (error["type"], error["code"], error["client_id"]) == ("error", "invalid_message", "c-1")
    assert stored(alpha) == []


def test_a_lone_surrogate_is_stored_as_a_question_mark_and_the_chat_goes_on(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    # JSON's \\u escapes can carry half of a UTF-16 pair, which PostgreSQL cannot store.
    async def scenario() -> list[Frame]:
        comm, _ready = await opened(key_alpha.key)
        await comm.send_to(
            text_data='{"type": "message", "client_id": "c-1", "text": "Hola \\ud800 mundo"}'
        )
        frames = await until_reply(comm)
        await comm.disconnect()
        return frames

    frames = run(scenario)

    assert frames[0]["message"]["text"] == "Hola ? mundo"
    assert stored(alpha)[0].text == "Hola ? mundo"
    assert frames[-1]["message"]["role"] == "assistant"


def test_a_message_over_the_size_limit_is_refused_and_not_stored(
    key_alpha: WidgetKey, alpha: Company, settings: Settings
) -> None:
    settings.CHAT_MAX_MESSAGE_CHARS = 20

    async def scenario() -> tuple[Frame, list[Frame]]:
        comm, _ready = await opened(key_alpha.key)
        await say(comm, "c-1", "x" * 21)
        error = await comm.receive_json_from(timeout=WAIT)
        # At the limit (surrounding blanks do not count) it goes through.
        frames = await exchange(comm, "c-2", "  " + "y" * 20 + "  ")
        await comm.disconnect()
        return error, frames

    error, frames = run(scenario)

    assert error["type"] == "error"
    assert (error["code"], error["client_id"], error["max_chars"]) == (
        "message_too_long",
        "c-1",
        20,
    )
    assert frames[0]["message"]["text"] == "y" * 20
    assert [m.text for m in stored(alpha) if m.role == "visitor"] == ["y" * 20]


def test_messages_per_session_are_rate_limited(
    key_alpha: WidgetKey, alpha: Company, settings: Settings
) -> None:
    settings.WIDGET_RATE_LIMIT_PER_SESSION = 2

    async def scenario() -> Frame:
        comm, _ready = await opened(key_alpha.key)
        await exchange(comm, "c-1", "Hola")
        await exchange(comm, "c-2", "¿Hacen envíos?")
        await say(comm, "c-3", "¿Y a Medellín?")
        error = await comm.receive_json_from(timeout=WAIT)
        assert await comm.receive_nothing(QUIET)
        # Another visitor on the same IP still may write.
        other, _ready = await opened(key_alpha.key, OTHER_SESSION)
        await exchange(other, "c-1", "Hola")
        await comm.disconnect()
        await other.disconnect()
        return error

    error = run(scenario)

    assert (error["type"], error["code"], error["client_id"]) == ("error", "rate_limited", "c-3")
    assert isinstance(error["retry_after"], int) and 1 <= error["retry_after"] <= 60
    assert [m.external_id for m in stored(alpha) if m.role == "visitor"] == [
        f"{SESSION}:c-1",
        f"{SESSION}:c-2",
    ]


def test_messages_per_ip_are_rate_limited(
    key_alpha: WidgetKey, alpha: Company, settings: Settings
) -> None:
    settings.WIDGET_RATE_LIMIT_PER_IP = 2

    async def scenario() -> tuple[Frame, list[Frame]]:
        one, _ready = await opened(key_alpha.key)
        two, _ready = await opened(key_alpha.key, OTHER_SESSION)
        await exchange(one, "c-1", "Hola")
        await exchange(two, "c-1", "Hola")
        await say(two, "c-2", "¿Hacen envíos?")
        error = await two.receive_json_from(timeout=WAIT)
        elsewhere, _ready = await opened(key_alpha.key, "visitor-session-0003", ip="203.0.113.9")
        frames = await exchange(elsewhere, "c-1", "Hola")
        for comm in (one, two, elsewhere):
            await comm.disconnect()
        return error, frames

    error, frames = run(scenario)

    assert (error["code"], error["client_id"]) == ("rate_limited", "c-2")
    assert frames[0]["message"]["client_id"] == "c-1"


# -- pre-chat fields --------------------------------------------------------------------------


def test_prechat_fields_are_checked_and_stored_on_the_contact(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    widget_settings(alpha, prechat_email="required", prechat_phone="optional", prechat_name="off")

    async def scenario() -> list[Frame]:
        comm, _ready = await opened(key_alpha.key)
        answers = []
        for fields in (
            {"name": "Ana"},  # no email
            {"email": "   "},
            {"email": "ana@"},
            {"email": "ana@example.com", "phone": "call me"},
            {"email": "a" * 250 + "@example.com"},  # valid per RFC, too long to store
            {"name": "Ana", "email": "ana@example.com", "phone": "+57 300 123 4567"},
        ):
            await comm.send_json_to({"type": "prechat", **fields})
            answers.append(await comm.receive_json_from(timeout=WAIT))
        await comm.disconnect()
        return answers

    answers = run(scenario)

    assert [(a["type"], a.get("code"), a.get("field")) for a in answers] == [
        ("error", "invalid_field", "email"),
        ("error", "invalid_field", "email"),
        ("error", "invalid_field", "email"),
        ("error", "invalid_field", "phone"),
        ("error", "invalid_field", "email"),
        ("prechat.ok", None, None),
    ]
    assert all(a["message"] for a in answers[:-1])
    with tenant_context(alpha):
        contact = Contact.objects.get(channel=Channel.WEB, external_id=SESSION)
        # The name is not asked: not stored.
        assert (contact.email, contact.phone, contact.name) == (
            "ana@example.com",
            "+57 300 123 4567",
            "",
        )


def test_prechat_details_go_to_the_visitors_conversation_contact(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    widget_settings(alpha, prechat_name="optional", prechat_email="optional")

    async def scenario() -> None:
        comm, _ready = await opened(key_alpha.key)
        await comm.send_json_to({"type": "prechat", "name": "Ana Gómez", "email": ""})
        assert await comm.receive_json_from(timeout=WAIT) == {"type": "prechat.ok"}
        await exchange(comm, "c-1", "Hola")
        await comm.disconnect()

    run(scenario)

    with tenant_context(alpha):
        conversation = Conversation.objects.select_related("contact").get(session_id=SESSION)
        assert conversation.contact.name == "Ana Gómez"
        assert Contact.objects.filter(external_id=SESSION).count() == 1


# -- a person -------------------------------------------------------------------------------


def test_a_handoff_reaches_every_tab_and_the_assistant_keeps_answering(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    async def scenario() -> tuple[list[Frame], list[Frame], list[Frame], list[Frame]]:
        one, _ready = await opened(key_alpha.key)
        await exchange(one, "c-1", "Hola")
        two, _ready = await opened(key_alpha.key)
        await one.send_json_to({"type": "handoff"})
        to_one = [await one.receive_json_from(timeout=WAIT) for _ in range(2)]
        to_two = [await two.receive_json_from(timeout=WAIT) for _ in range(2)]
        # Waiting for a person, the assistant still answers.
        answered = await exchange(one, "c-2", "¿Sigues ahí?")
        assert await until_reply(two) == answered
        # Asking again changes nothing.
        await two.send_json_to({"type": "handoff"})
        again = [await two.receive_json_from(timeout=WAIT)]
        assert await one.receive_json_from(timeout=WAIT) == again[0]
        for comm in (one, two):
            assert await comm.receive_nothing(QUIET)
            await comm.disconnect()
        return to_one, to_two, answered, again

    to_one, to_two, answered, again = run(scenario)

    assert to_one == to_two
    mode, notice = to_one
    assert mode == {"type": "mode", "mode": "pending_human"}
    assert notice["type"] == "message" and notice["message"]["role"] == "system"
    assert notice["message"]["text"] and notice["message"]["client_id"] is None
    assert_streamed(answered)
    assert again == [{"type": "mode", "mode": "pending_human"}]

    conversation = conversation_of(alpha)
    assert conversation.mode == "pending_human"
    assert conversation.context["handoff"]["reason"] == "visitor_asked"
    assert conversation.context["handoff"]["requested_at"]
    roles = [(m.role, m.status) for m in stored(alpha)]
    assert roles == [
        ("visitor", "received"),
        ("assistant", "completed"),
        ("system", "completed"),
        ("visitor", "received"),
        ("assistant", "completed"),
    ]
    with tenant_context(alpha):
        [event] = Event.objects.filter(kind="handoff.requested")
        assert (event.conversation_id, event.channel) == (conversation.pk, "web")
        assert event.data == {"reason": "visitor_asked"}


def test_a_handoff_before_any_message_starts_the_conversation(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    async def scenario() -> list[Frame]:
        comm, _ready = await opened(key_alpha.key)
        await comm.send_json_to({"type": "handoff"})
        frames = [await comm.receive_json_from(timeout=WAIT) for _ in range(3)]
        assert await comm.receive_nothing(QUIET)  # the request itself is not answered
        await comm.disconnect()
        return frames

    mode, request, notice = run(scenario)

    assert mode == {"type": "mode", "mode": "pending_human"}
    # The tab shows the request that started the conversation, then the notice.
    assert request["message"]["role"] == "visitor"
    assert request["message"]["text"] == "Me gustaría hablar con una persona."  # Spanish default
    assert notice["message"]["role"] == "system"
    assert conversation_of(alpha).mode == "pending_human"
    assert [m.role for m in stored(alpha)] == ["visitor", "system"]


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        ({}, "I've asked the team to join this conversation"),
        (
            # Open no day at all: always outside business hours.
            {
                "hours_enabled": True,
                "hours_days": [],
                "hours_start": time(9),
                "hours_end": time(17),
            },
            "Our team is outside business hours right now",
        ),
    ],
)
def test_the_handoff_notice_depends_on_business_hours(
    key_alpha: WidgetKey, alpha: Company, hours: dict[str, Any], expected: str
) -> None:
    widget_settings(alpha, **hours)

    async def scenario() -> Frame:
        comm = await connected(key_alpha.key)
        await hello(comm, context={"language": "en"})
        await exchange(comm, "c-1", "Hello")
        await comm.send_json_to({"type": "handoff"})
        await comm.receive_json_from(timeout=WAIT)
        notice = await comm.receive_json_from(timeout=WAIT)
        await comm.disconnect()
        return notice

    notice = run(scenario)

    assert notice["message"]["text"].startswith(expected)


def test_no_reply_is_written_while_a_person_has_the_conversation(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    conversation = web_message(alpha, "Hola").conversation
    with tenant_context(alpha):
        Conversation.objects.filter(pk=conversation.pk).update(mode=Conversation.Mode.HUMAN)

    async def scenario() -> tuple[Frame, Frame]:
        comm, ready = await opened(key_alpha.key)
        await say(comm, "c-1", "¿Hay alguien?")
        echo = await comm.receive_json_from(timeout=WAIT)
        assert await comm.receive_nothing(QUIET)
        await comm.disconnect()
        return ready, echo

    ready, echo = run(scenario)

    assert ready["mode"] == "human"
    assert echo["message"]["client_id"] == "c-1"
    assert [m.role for m in stored(alpha)] == ["visitor", "visitor"]


# -- what the page tells about itself ---------------------------------------------------------


def test_the_pages_context_is_bounded_before_it_is_stored(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    context: dict[str, Any] = {
        "page": "https://shop.example.com/" + "p" * 600,
        "nested": {"a": 1},
        "list": [1, 2],
        "nothing": None,
        "x" * 65: "too long a key",
        "ratio": 0.5,
        "logged_in": True,
    }
    raw_tail = ', "huge": 1e999, "tiny": -1e999'  # ±Infinity in Python's JSON reading
    context.update({f"k{n}": n for n in range(30)})

    async def scenario() -> None:
        comm = await connected(key_alpha.key)
        text = json.dumps({"type": "hello", "session_id": SESSION, "after": 0, "context": context})
        # Put the infinities first among the context's keys so that they are not cut off.
        text = text.replace('"context": {', '"context": {' + raw_tail[2:] + ", ", 1)
        await comm.send_to(text_data=text)
        assert (await comm.receive_json_from(timeout=WAIT))["type"] == "ready"
        await exchange(comm, "c-1", "Hola")
        await comm.disconnect()

    run(scenario)

    stored_context = conversation_of(alpha).context
    assert len(stored_context) <= 20
    assert "huge" not in stored_context and "tiny" not in stored_context
    assert stored_context["page"] == context["page"][:500]
    assert (stored_context["ratio"], stored_context["logged_in"]) == (0.5, True)
    for dropped in ("nested", "list", "nothing", "x" * 65):
        assert dropped not in stored_context


def test_ready_carries_the_visitors_welcome_of_a_running_ab_test(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    from apps.experiments.models import Assignment
    from apps.experiments.services import experiment_create, experiment_start

    with tenant_context(alpha):
        experiment = experiment_create(
            name="Welcome", target="welcome", metric="leads",
            texts=[("¡Hola!", 1), ("¡Hola! ¿Buscas un seguro de auto?", 100)],
        )  # fmt: skip
        experiment_start(experiment=experiment)

    async def scenario() -> tuple[Frame, Frame]:
        comm, first = await opened(key_alpha.key)
        await comm.disconnect()
        comm, again = await opened(key_alpha.key)
        await comm.disconnect()
        return first, again

    first, again = run(scenario)

    with tenant_context(alpha):
        variant = Assignment.objects.get(session_id=SESSION).variant
    assert first["welcome"] == again["welcome"] == variant.text
    assert variant.key == "B"
