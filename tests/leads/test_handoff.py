"""The human handoff (apps.leads.handoff): a visitor asking for a person in plain words, the
company's rules (a qualified lead asking for a price, the assistant unable to answer twice),
the wait time, an agent taking, releasing and closing a conversation, agents' messages reaching
the visitor live on every channel, and the bot never talking over a person.

Everything runs in-process, in the test's rolled-back transaction: Celery is eager and
`transaction.on_commit` runs its callback at once, so one `message_receive` stores the message,
runs the reply task (the offline responder, or the local FakeOpenAI for the messaging channels)
and delivers what the visitor sees to the local simulators of Telegram, Twilio and Meta
(tests/fakes/). The widget's visitor is a real WidgetConsumer driven by a WebsocketCommunicator,
its events crossing the real channel layer (Redis).

Conversations whose exact notices are asserted are in English (the source strings); one test
checks a Spanish visitor and team get them in Spanish.
"""

from __future__ import annotations

import asyncio
import contextlib
import zoneinfo
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import channels.consumer
import channels.db
import channels.generic.websocket
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing.websocket import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.analytics.models import Event
from apps.channels.models import ChannelConnection, OutboundMessage, WidgetSettings
from apps.conversations.models import Channel, Conversation, Message
from apps.conversations.services import (
    Received,
    ReplyHooks,
    conversation_messages_visible,
    message_public,
    message_receive,
)
from apps.leads.handoff import (
    HandoffConflict,
    agent_message_send,
    asks_for_person,
    conversation_close,
    conversation_handoff_request,
    conversation_release,
    conversation_take,
    handoff_wait_expire,
)
from apps.leads.models import Lead, LeadEvent, LeadSettings, Notification
from apps.leads.services import lead_for_conversation
from apps.leads.tasks import handoff_wait_task
from apps.tenants.models import Company
from apps.widget.models import WidgetKey
from apps.widget.services import widget_key_create
from chapi import ratelimit
from chapi.asgi import application
from tests.channels.conftest import (
    assistant_on,
    connect_meta,
    connect_telegram,
    connect_twilio,
    post_meta,
    post_telegram,
    post_twilio,
)
from tests.conftest import owner
from tests.fakes.meta_server import FakeMeta
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.twilio_server import FakeTwilio

T = TypeVar("T")
Frame = dict[str, Any]

SESSION = "handoff-visitor-0001"
ORIGIN = "https://shop.example.com"
WAIT = 5.0  # seconds for a frame that must come
QUIET = 0.4  # seconds of silence that mean nothing more comes
TELEGRAM_CHAT = 7120933746
TWILIO_PERSON = "whatsapp:+573104567890"
META_PERSON = "5215587654321"

# What the visitor is told, in English (the source strings).
QUEUED = (
    "I've asked the team to join this conversation; a person will answer here shortly. "
    "Meanwhile I can keep helping you."
)
AFTER_HOURS = (
    "Our team is outside business hours right now. Leave your phone number or email and the "
    "best time to reach you, and a person will get back to you as soon as they're back. "
    "Meanwhile I can keep helping you."
)
BUSY = (
    "Sorry, everyone on the team is busy right now. Leave your phone number or email and the "
    "best time to reach you, and we'll get back to you."
)
ANA_JOINED = "Ana from the team has joined the conversation."
BACK = "The assistant is back in this conversation. Ask me anything."
CLOSED = "This conversation is closed. Write again any time and we'll help you."
TEAM_NOTICE = "A visitor is waiting for a person (Web widget)."


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    # on_commit never fires inside the test's transaction: run the callbacks at once.
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    # The widget consumer's handlers run on this thread, inside the test's transaction:
    # Channels must not close "old" connections around them (that would be this one).
    monkeypatch.setattr(channels.db, "close_old_connections", lambda **kwargs: None)
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", _nothing)
    monkeypatch.setattr(channels.generic.websocket, "aclose_old_connections", _nothing)
    settings.OPENAI_API_KEY = ""  # no model: the offline responder answers


async def _nothing() -> None:
    return None


# -- the team and the visitor ---------------------------------------------------------------


@dataclass
class Team:
    owner: User
    admin: User
    ana: User  # agent
    bruno: User  # agent
    viewer: User


def teammate(company: Company, name: str, role: str) -> User:
    with tenant_context(company):
        return user_create(
            email=f"{name.split()[0].lower()}@{company.slug}.example.com",
            name=name,
            password=None,
            role=role,
        )


@pytest.fixture
def team(alpha: Company) -> Team:
    return Team(
        owner=owner(alpha),
        admin=teammate(alpha, "Carla", Role.ADMIN),
        ana=teammate(alpha, "Ana", Role.AGENT),
        bruno=teammate(alpha, "Bruno", Role.AGENT),
        viewer=teammate(alpha, "Diego", Role.VIEWER),
    )


@pytest.fixture
def company(alpha: Company) -> Iterator[Company]:
    """alpha, its schema active for the whole test, writing to its team in English."""
    alpha.language = "en"
    alpha.save(update_fields=["language"])
    with tenant_context(alpha):
        yield alpha


def visitor_writes(text: str, session: str = SESSION, channel: str = Channel.WEB) -> Received:
    """A visitor message through the pipeline: stored, then answered (eagerly)."""
    return message_receive(channel=channel, session_id=session, text=text)


def conversation(session: str = SESSION) -> Conversation:
    return Conversation.objects.get(session_id=session)


def transcript(session: str = SESSION) -> list[tuple[str, str, str]]:
    return list(
        Message.objects.filter(conversation__session_id=session)
        .order_by("id")
        .values_list("role", "status", "text")
    )


def handoff_events(lead: Lead | None) -> list[tuple[str, dict[str, Any]]]:
    assert lead is not None
    return list(
        LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.HANDOFF)
        .order_by("id")
        .values_list("new", "data")
    )


def lead_settings(**fields: Any) -> None:
    LeadSettings.objects.update_or_create(pk=1, defaults=fields)


def closed_now() -> dict[str, Any]:
    """Business hours every day, in a window that starts two hours from now: closed now."""
    local = timezone.now().astimezone(zoneinfo.ZoneInfo("America/Bogota"))
    return {
        "hours_enabled": True,
        "hours_days": [0, 1, 2, 3, 4, 5, 6],
        "hours_start": (local + timedelta(hours=2)).time().replace(second=0, microsecond=0),
        "hours_end": (local + timedelta(hours=3)).time().replace(second=0, microsecond=0),
        "time_zone": "America/Bogota",
    }


# -- 1. words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "quiero hablar con una persona",
        "Quiero hablar con una PERSONA, por favor",
        "¿Puedo hablar con un humano?",
        "hablar con un humano",
        "comunicarme con un agente",
        "necesito hablar con un asesor",
        "necesito un asesor",
        "comunícame con un agente por favor",
        "quiero hablar con alguien",
        "¿hay una persona real?",
        "talk to a human",
        "can I speak with someone",
        "I want a real person",
        "I want to talk to a person",
        "let me talk to someone",
        "can I chat with a sales rep?",
        "I need a live agent",
    ],
)
def test_asks_for_person_recognises_a_request_for_a_person(text: str) -> None:
    assert asks_for_person(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "me pasas con un asesor?",
        "¿me comunicas con un asesor?",
        "pásame con alguien de ventas",
        "platicar con un asesor",
        "un ser humano, por favor",
        "connect me to an agent",
        "transfer me to sales",
    ],
)
def test_asks_for_person_recognises_other_natural_phrasings(text: str) -> None:
    assert asks_for_person(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "la persona que me atendió fue amable",
        "hablamos de precios la semana pasada",
        "soy agente de seguros",
        "¿aceptan persona moral?",
        "una persona física o moral",
        "el agente de ventas me dijo que había descuento",
        "¿qué hace un asesor de imagen?",
        "human resources software",
        "the person I talked to was nice",
        "I am a real estate agent",
        "customer service hours?",
        "this is a human-centered design",
        "necesito un agente aduanal para importar",
        "quiero un asesor de imagen",
        "I want to talk about the human resources module",
    ],
)
def test_asks_for_person_ignores_near_misses(text: str) -> None:
    assert asks_for_person(text) is False


# -- 2. the visitor asks in plain words -------------------------------------------------------


def test_a_visitor_asking_for_a_person_is_queued_the_team_notified_and_the_bot_keeps_answering(
    company: Company, team: Team
) -> None:
    visitor_writes("Hello there")

    visitor_writes("I want to talk to a person")

    chat = conversation()
    assert chat.mode == Conversation.Mode.PENDING_HUMAN
    assert chat.agent_id is None
    assert chat.handoff_requested_at is not None
    assert chat.context["handoff"] == {
        "reason": "visitor_asked",
        "requested_at": chat.handoff_requested_at.isoformat(),
    }
    # The notice comes before the assistant's answer, which still comes (pending_human).
    assert [(role, status) for role, status, _ in transcript()] == [
        ("visitor", "received"),
        ("assistant", "completed"),
        ("visitor", "received"),
        ("system", "completed"),
        ("assistant", "completed"),
    ]
    assert transcript()[3][2] == QUEUED
    assert transcript()[4][2].startswith("Of course, I'm connecting you with a person")
    notified = Notification.objects.filter(conversation_id=chat.pk)
    assert sorted(notified.values_list("user_id", flat=True)) == sorted(
        [team.owner.pk, team.admin.pk, team.ana.pk, team.bruno.pk]
    )
    assert set(notified.values_list("kind", "text", "url", "read_at")) == {
        ("handoff", "A visitor is waiting for a person (Web widget).",
         f"/dashboard/inbox/conversations/{chat.pk}/", None)
    }  # fmt: skip
    assert not Notification.objects.filter(user=team.viewer).exists()
    assert handoff_events(lead_for_conversation(chat.pk)) == [
        ("requested", {"reason": "visitor_asked"})
    ]
    [requested] = Event.objects.filter(kind="handoff.requested")
    assert (requested.conversation_id, requested.channel, requested.data) == (
        chat.pk,
        "web",
        {"reason": "visitor_asked"},
    )


def test_asking_again_while_waiting_changes_nothing(company: Company, team: Team) -> None:
    visitor_writes("I want to talk to a person")
    first = conversation()

    visitor_writes("can I speak with someone? I want a real person")

    chat = conversation()
    assert chat.mode == Conversation.Mode.PENDING_HUMAN
    assert chat.handoff_requested_at == first.handoff_requested_at
    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED]
    assert Notification.objects.count() == 4
    assert Event.objects.filter(kind="handoff.requested").count() == 1
    assert len(handoff_events(lead_for_conversation(chat.pk))) == 1


def test_outside_business_hours_the_notice_asks_how_to_call_back(
    company: Company, team: Team
) -> None:
    WidgetSettings.objects.update_or_create(pk=1, defaults=closed_now())
    assert WidgetSettings.objects.get(pk=1).is_open() is False

    visitor_writes("I want to talk to a person")

    chat = conversation()
    assert chat.mode == Conversation.Mode.PENDING_HUMAN
    assert chat.context["handoff"] == {
        "reason": "visitor_asked",
        "requested_at": chat.handoff_requested_at.isoformat(),
        "callback": True,
    }
    assert [text for role, _, text in transcript() if role == "system"] == [AFTER_HOURS]
    assert Notification.objects.count() == 4  # the team still sees it in the morning
    # The callback was asked already: the end of the wait time adds nothing.
    Conversation.objects.filter(pk=chat.pk).update(
        handoff_requested_at=chat.handoff_requested_at - timedelta(hours=1)
    )
    chat.refresh_from_db()
    assert (
        handoff_wait_expire(
            conversation_id=chat.pk, requested_at=chat.handoff_requested_at.isoformat()
        )
        is None
    )
    assert [text for role, _, text in transcript() if role == "system"] == [AFTER_HOURS]


def test_a_spanish_visitor_gets_the_handoff_notices_in_spanish(
    company: Company, team: Team
) -> None:
    company.language = "es"
    company.save(update_fields=["language"])
    visitor_writes("quiero hablar con una persona")
    conversation_take(conversation=conversation(), agent=team.ana)

    notices = [text for role, _, text in transcript() if role == "system"]
    assert notices[0].startswith("Le pedí al equipo que se una a esta conversación")
    assert notices[1] == "Ana, del equipo, se unió a la conversación."
    assert Notification.objects.first().text == (
        "Un visitante está esperando a una persona (Widget web)."
    )


# -- 3. a qualified lead asks for a price -----------------------------------------------------


def qualify_the_visitors_lead() -> Lead:
    lead = lead_for_conversation(conversation().pk)
    assert lead is not None
    Lead.objects.filter(pk=lead.pk).update(qualified_at=timezone.now())
    return lead


@pytest.mark.parametrize("question", ["¿cuánto cuesta?", "How much is it?"])
def test_a_qualified_lead_asking_for_a_price_is_handed_to_the_team(
    company: Company, team: Team, question: str
) -> None:
    visitor_writes("Hello")
    qualify_the_visitors_lead()

    visitor_writes(question)

    chat = conversation()
    assert chat.mode == Conversation.Mode.PENDING_HUMAN
    assert chat.context["handoff"]["reason"] == "qualified_price"
    assert [role for role, _, _ in transcript()] == [
        "visitor", "assistant", "visitor", "system", "assistant"
    ]  # fmt: skip
    assert Notification.objects.count() == 4
    assert handoff_events(lead_for_conversation(chat.pk)) == [
        ("requested", {"reason": "qualified_price"})
    ]


def test_a_qualified_lead_asking_for_a_price_stays_with_the_bot_when_the_rule_is_off(
    company: Company, team: Team
) -> None:
    lead_settings(handoff_on_price_when_qualified=False)
    visitor_writes("Hello")
    qualify_the_visitors_lead()

    visitor_writes("¿cuánto cuesta?")

    chat = conversation()
    assert chat.mode == Conversation.Mode.BOT
    assert chat.handoff_requested_at is None
    assert "handoff" not in chat.context
    assert [role for role, _, _ in transcript()] == ["visitor", "assistant"] * 2
    assert not Notification.objects.exists()
    assert not Event.objects.filter(kind="handoff.requested").exists()


def test_an_unqualified_lead_asking_for_a_price_stays_with_the_bot(
    company: Company, team: Team
) -> None:
    visitor_writes("Hello")

    visitor_writes("¿cuánto cuesta?")

    chat = conversation()
    assert lead_for_conversation(chat.pk).qualified_at is None  # type: ignore[union-attr]
    assert chat.mode == Conversation.Mode.BOT
    assert [role for role, _, _ in transcript()] == ["visitor", "assistant"] * 2
    assert not Notification.objects.exists()


# -- 4. the assistant cannot answer twice -----------------------------------------------------


def test_the_assistant_unable_to_answer_twice_in_a_row_hands_off(
    company: Company, team: Team
) -> None:
    visitor_writes("Hello")
    visitor_writes("Do you integrate with Salesforce?")
    assert conversation().mode == Conversation.Mode.BOT

    visitor_writes("Do you have an app for smart watches?")

    chat = conversation()
    assert chat.mode == Conversation.Mode.PENDING_HUMAN
    assert chat.context["handoff"]["reason"] == "assistant_cannot_answer"
    assert list(
        Message.objects.filter(role=Message.Role.ASSISTANT)
        .order_by("id")
        .values_list("intent", flat=True)
    ) == ["greeting", "unknown", "unknown"]
    # The notice follows the second reply that could not answer.
    assert [role for role, _, _ in transcript()][-2:] == ["assistant", "system"]
    assert transcript()[-1][2] == QUEUED
    assert handoff_events(lead_for_conversation(chat.pk)) == [
        ("requested", {"reason": "assistant_cannot_answer"})
    ]


def test_the_assistant_unable_to_answer_once_stays_in_charge(company: Company, team: Team) -> None:
    visitor_writes("Hello")
    visitor_writes("Do you integrate with Salesforce?")
    visitor_writes("thanks")  # answered
    visitor_writes("Do you have an app for smart watches?")

    intents = list(
        Message.objects.filter(role=Message.Role.ASSISTANT)
        .order_by("id")
        .values_list("intent", flat=True)
    )
    assert intents[1] == intents[3] == "unknown" != intents[2]
    assert conversation().mode == Conversation.Mode.BOT
    assert not Message.objects.filter(role=Message.Role.SYSTEM).exists()
    assert not Notification.objects.exists()


def test_the_assistant_unable_to_answer_twice_stays_in_charge_when_the_rule_is_off(
    company: Company, team: Team
) -> None:
    lead_settings(handoff_when_unanswered=False)
    visitor_writes("Hello")
    visitor_writes("Do you integrate with Salesforce?")
    visitor_writes("Do you have an app for smart watches?")

    assert conversation().mode == Conversation.Mode.BOT
    assert not Message.objects.filter(role=Message.Role.SYSTEM).exists()
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "messages",
    [
        ["Hello", "How much does the premium plan cost?", "yes please"],
        ["Hello", "connect me to an agent"],
    ],
)
def test_when_the_assistant_says_it_connects_a_person_the_conversation_is_queued(
    company: Company, team: Team, messages: list[str]
) -> None:
    for text in messages:
        visitor_writes(text)

    last = Message.objects.filter(role=Message.Role.ASSISTANT).order_by("id").last()
    assert last is not None and last.intent == "handoff"
    assert last.text.startswith("Of course, I'm connecting you with a person")
    assert conversation().mode == Conversation.Mode.PENDING_HUMAN


# -- 5. the wait time -------------------------------------------------------------------------


def waiting(minutes_ago: float) -> Conversation:
    """The visitor's conversation, asked for a person `minutes_ago` minutes ago."""
    visitor_writes("I want to talk to a person")
    chat = conversation()
    Conversation.objects.filter(pk=chat.pk).update(
        handoff_requested_at=chat.handoff_requested_at - timedelta(minutes=minutes_ago)
    )
    chat.refresh_from_db()
    return chat


def expire(chat: Conversation, requested_at: datetime | None = None) -> Message | None:
    when = requested_at or chat.handoff_requested_at
    assert when is not None
    return handoff_wait_expire(conversation_id=chat.pk, requested_at=when.isoformat())


def test_the_wait_not_yet_elapsed_adds_nothing(company: Company, team: Team) -> None:
    lead_settings(handoff_wait_minutes=5)
    chat = waiting(minutes_ago=4)

    assert expire(chat) is None

    chat.refresh_from_db()
    assert "callback" not in chat.context["handoff"]
    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED]
    assert not Event.objects.filter(kind="handoff.unanswered").exists()


def test_nobody_taking_it_in_time_asks_how_to_call_back_once(company: Company, team: Team) -> None:
    lead_settings(handoff_wait_minutes=5)
    chat = waiting(minutes_ago=5)

    message = expire(chat)

    assert message is not None
    assert (message.role, message.status, message.text) == ("system", "completed", BUSY)
    chat.refresh_from_db()
    assert chat.context["handoff"]["callback"] is True
    assert chat.mode == Conversation.Mode.PENDING_HUMAN  # still in the team's queue
    [unanswered] = Event.objects.filter(kind="handoff.unanswered")
    assert (unanswered.conversation_id, unanswered.channel) == (chat.pk, "web")
    assert handoff_events(lead_for_conversation(chat.pk)) == [
        ("requested", {"reason": "visitor_asked"}),
        ("unanswered", {}),
    ]
    # A redelivered task says nothing more.
    assert expire(chat) is None
    handoff_wait_task.apply(args=[chat.pk, chat.handoff_requested_at.isoformat()])  # type: ignore[union-attr]
    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED, BUSY]
    assert Event.objects.filter(kind="handoff.unanswered").count() == 1


def test_the_wait_task_asks_how_to_call_back(company: Company, team: Team) -> None:
    chat = waiting(minutes_ago=6)  # the default wait is 5 minutes

    handoff_wait_task.apply(args=[chat.pk, chat.handoff_requested_at.isoformat()])  # type: ignore[union-attr]

    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED, BUSY]


def test_a_conversation_taken_meanwhile_gets_no_wait_notice(company: Company, team: Team) -> None:
    chat = waiting(minutes_ago=10)
    conversation_take(conversation=chat, agent=team.ana)

    assert expire(chat) is None

    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED, ANA_JOINED]
    assert not Event.objects.filter(kind="handoff.unanswered").exists()


def test_the_wait_of_an_earlier_request_says_nothing_about_a_newer_one(
    company: Company, team: Team
) -> None:
    chat = waiting(minutes_ago=10)
    earlier = chat.handoff_requested_at - timedelta(minutes=30)  # type: ignore[operator]

    assert expire(chat, requested_at=earlier) is None

    chat.refresh_from_db()
    assert "callback" not in chat.context["handoff"]
    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED]


def test_the_wait_of_a_released_request_says_nothing(company: Company, team: Team) -> None:
    chat = waiting(minutes_ago=10)
    requested = chat.handoff_requested_at
    conversation_release(conversation=chat, actor=team.ana)

    assert expire(chat, requested_at=requested) is None

    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED, BACK]


# -- 6. take, release, close ------------------------------------------------------------------


def test_taking_a_conversation_puts_the_agent_in_charge_and_tells_the_visitor(
    company: Company, team: Team
) -> None:
    chat = waiting(minutes_ago=2)

    taken = conversation_take(conversation=chat, agent=team.ana)

    assert (taken.mode, taken.agent_id) == (Conversation.Mode.HUMAN, team.ana.pk)
    chat.refresh_from_db()
    assert (chat.mode, chat.agent_id) == (Conversation.Mode.HUMAN, team.ana.pk)
    assert transcript()[-1] == ("system", "completed", ANA_JOINED)
    lead = lead_for_conversation(chat.pk)
    assert lead is not None and lead.owner_id == team.ana.pk
    assert handoff_events(lead) == [
        ("requested", {"reason": "visitor_asked"}),
        ("taken", {"agent": "Ana"}),
    ]
    [taken_event] = Event.objects.filter(kind="handoff.taken")
    assert taken_event.conversation_id == chat.pk
    assert taken_event.data["agent_id"] == team.ana.pk
    assert 120 <= taken_event.data["waited_seconds"] < 130
    # Taking it again is a no-op.
    conversation_take(conversation=chat, agent=team.ana)
    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED, ANA_JOINED]
    # The bot stays silent now.
    visitor_writes("hello?")
    assert transcript()[-1] == ("visitor", "received", "hello?")


def test_taking_keeps_a_lead_owner_already_set(company: Company, team: Team) -> None:
    chat = waiting(minutes_ago=1)
    lead = lead_for_conversation(chat.pk)
    Lead.objects.filter(pk=lead.pk).update(owner=team.bruno)  # type: ignore[union-attr]

    conversation_take(conversation=chat, agent=team.ana)

    assert Lead.objects.get(pk=lead.pk).owner_id == team.bruno.pk  # type: ignore[union-attr]


def test_an_agent_cannot_take_another_agents_conversation_unless_forced(
    company: Company, team: Team
) -> None:
    chat = waiting(minutes_ago=1)
    conversation_take(conversation=chat, agent=team.bruno)
    before = transcript()

    with pytest.raises(HandoffConflict):
        conversation_take(conversation=chat, agent=team.ana)

    chat.refresh_from_db()
    assert (chat.mode, chat.agent_id) == (Conversation.Mode.HUMAN, team.bruno.pk)
    assert transcript() == before
    assert Event.objects.filter(kind="handoff.taken").count() == 1

    conversation_take(conversation=chat, agent=team.ana, force=True)

    chat.refresh_from_db()
    assert (chat.mode, chat.agent_id) == (Conversation.Mode.HUMAN, team.ana.pk)
    assert transcript()[-1] == ("system", "completed", ANA_JOINED)


def test_releasing_gives_the_conversation_back_to_the_assistant(
    company: Company, team: Team
) -> None:
    chat = waiting(minutes_ago=1)
    conversation_take(conversation=chat, agent=team.ana)

    conversation_release(conversation=chat, actor=team.ana)

    chat.refresh_from_db()
    assert (chat.mode, chat.agent_id, chat.handoff_requested_at) == (
        Conversation.Mode.BOT,
        None,
        None,
    )
    assert transcript()[-1] == ("system", "completed", BACK)
    assert [new for new, _ in handoff_events(lead_for_conversation(chat.pk))] == [
        "requested",
        "taken",
        "released",
    ]
    assert Event.objects.filter(kind="handoff.released").count() == 1
    visitor_writes("Hello again")
    assert [role for role, _, _ in transcript()][-2:] == ["visitor", "assistant"]


def test_closing_then_writing_again_reopens_the_conversation_with_the_assistant(
    company: Company, team: Team
) -> None:
    chat = waiting(minutes_ago=1)
    conversation_take(conversation=chat, agent=team.ana)

    conversation_close(conversation=chat, actor=team.ana)

    chat.refresh_from_db()
    assert (chat.mode, chat.handoff_requested_at) == (Conversation.Mode.CLOSED, None)
    assert transcript()[-1] == ("system", "completed", CLOSED)
    assert Event.objects.filter(kind="conversation.closed").count() == 1

    visitor_writes("Hello, me again")

    chat.refresh_from_db()
    assert (chat.mode, chat.agent_id) == (Conversation.Mode.BOT, None)
    assert [(role, status) for role, status, _ in transcript()][-2:] == [
        ("visitor", "received"),
        ("assistant", "completed"),
    ]
    assert Event.objects.filter(kind="conversation.reopened").count() == 1


# -- 7. an agent writes -----------------------------------------------------------------------


def test_an_agents_message_takes_a_waiting_conversation_and_is_signed(
    company: Company, team: Team
) -> None:
    chat = waiting(minutes_ago=1)

    message = agent_message_send(conversation=chat, agent=team.ana, text="  Hola, soy Ana.  ")

    assert (message.role, message.status, message.author_id, message.text) == (
        "agent",
        "completed",
        team.ana.pk,
        "Hola, soy Ana.",
    )
    chat.refresh_from_db()
    assert (chat.mode, chat.agent_id) == (Conversation.Mode.HUMAN, team.ana.pk)
    assert transcript()[-2:] == [
        ("system", "completed", ANA_JOINED),
        ("agent", "completed", "Hola, soy Ana."),
    ]
    stored = Message.objects.select_related("author").get(pk=message.pk)
    assert message_public(stored) == {
        "id": message.pk,
        "role": "agent",
        "text": "Hola, soy Ana.",
        "created_at": stored.created_at.isoformat(),
        "client_id": None,
        "author": "Ana",
    }
    # The visitor's history shows it too.
    assert conversation_messages_visible(chat)[-1] == stored
    [event] = Event.objects.filter(kind="agent.message")
    assert event.data == {"agent_id": team.ana.pk}
    assert event.message_id == message.pk


def test_an_agent_cannot_write_in_another_agents_conversation(company: Company, team: Team) -> None:
    chat = waiting(minutes_ago=1)
    conversation_take(conversation=chat, agent=team.bruno)

    with pytest.raises(HandoffConflict):
        agent_message_send(conversation=chat, agent=team.ana, text="Hola")

    assert not Message.objects.filter(role=Message.Role.AGENT).exists()
    assert conversation().agent_id == team.bruno.pk


def test_an_empty_agent_message_is_refused_and_takes_nothing(company: Company, team: Team) -> None:
    chat = waiting(minutes_ago=1)

    with pytest.raises(ValueError):
        agent_message_send(conversation=chat, agent=team.ana, text="   \n ")

    assert conversation().mode == Conversation.Mode.PENDING_HUMAN
    assert not Message.objects.filter(role=Message.Role.AGENT).exists()
    assert [text for role, _, text in transcript() if role == "system"] == [QUEUED]


def test_an_agent_signs_with_their_first_name_only(company: Company, team: Team) -> None:
    lopez = teammate(company, "Lucía López", Role.AGENT)
    chat = waiting(minutes_ago=1)

    message = agent_message_send(conversation=chat, agent=lopez, text="Hola")

    assert message_public(message)["author"] == "Lucía"


# -- the widget, live -------------------------------------------------------------------------

_sockets: list[WebsocketCommunicator] = []


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run `scenario` on a new event loop; end the sockets it left open while this thread still
    serves the consumers' database calls, and the rate limiter's client of this loop."""

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


@pytest.fixture
def widget_key(alpha: Company) -> WidgetKey:
    return widget_key_create(company=alpha, name="Shop", origins=[ORIGIN])


async def widget_opened(key: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application,
        f"/ws/widget/?key={key}",
        headers=[(b"host", b"localhost"), (b"origin", ORIGIN.encode())],
    )
    comm.scope["client"] = ("198.51.100.7", 50123)
    _sockets.append(comm)
    accepted, _subprotocol = await comm.connect(timeout=WAIT)
    assert accepted
    await comm.send_json_to(
        {"type": "hello", "session_id": SESSION, "after": 0, "context": {"language": "en"}}
    )
    ready = await comm.receive_json_from(timeout=WAIT)
    assert ready["type"] == "ready", ready
    return comm


async def frames_until_quiet(comm: WebsocketCommunicator) -> list[Frame]:
    """Every frame until nothing more comes for a while (a receive that times out would
    cancel the consumer: ask whether something is waiting first)."""
    frames: list[Frame] = []
    while not await comm.receive_nothing(timeout=QUIET):
        frames.append(await comm.receive_json_from(timeout=WAIT))
    return frames


def web_conversation(alpha: Company, text: str = "Hello") -> Conversation:
    with tenant_context(alpha):
        return message_receive(
            channel=Channel.WEB, session_id=SESSION, text=text, generate=False
        ).conversation


def test_a_visitor_on_the_widget_sees_the_agent_join_and_write_live(
    alpha: Company, team: Team, widget_key: WidgetKey
) -> None:
    chat = web_conversation(alpha)

    def agent_writes() -> Message:
        with tenant_context(alpha):
            return agent_message_send(conversation=chat, agent=team.ana, text="Hola, soy Ana.")

    async def scenario() -> tuple[list[Frame], Message]:
        comm = await widget_opened(widget_key.key)
        message = await sync_to_async(agent_writes)()
        frames = await frames_until_quiet(comm)
        await comm.disconnect()
        return frames, message

    frames, message = run(scenario)

    with tenant_context(alpha):
        joined = Message.objects.get(role=Message.Role.SYSTEM)
    assert frames == [
        {"type": "mode", "mode": "human"},
        {
            "type": "message",
            "message": {
                "id": joined.pk,
                "role": "system",
                "text": ANA_JOINED,
                "created_at": joined.created_at.isoformat(),
                "client_id": None,
                "author": None,
            },
        },
        {
            "type": "message",
            "message": {
                "id": message.pk,
                "role": "agent",
                "text": "Hola, soy Ana.",
                "created_at": message.created_at.isoformat(),
                "client_id": None,
                "author": "Ana",
            },
        },
    ]


# -- the messaging channels -------------------------------------------------------------------


@pytest.fixture(scope="module")
def _simulators() -> Iterator[tuple[FakeTelegram, FakeTwilio, FakeMeta, FakeOpenAI]]:
    with FakeTelegram() as tg, FakeTwilio() as tw, FakeMeta() as wa, FakeOpenAI() as llm:
        yield tg, tw, wa, llm


def _close_model_clients() -> None:
    # One SDK client is cached per event loop, key and endpoint: drop them between tests.
    from apps.assistants.providers import openai as openai_provider

    openai_provider.clients_close()


@dataclass
class Line:
    """One messaging channel as the visitor uses it: write to the bot, read what it sent."""

    kind: str
    channel: ChannelConnection
    write: Callable[[str], Any]
    sent: Callable[[], list[str]]


@pytest.fixture(params=["telegram", "whatsapp_twilio", "whatsapp_meta"])
def line(
    request: pytest.FixtureRequest,
    alpha: Company,
    settings: Settings,
    client_public: Client,
    _simulators: tuple[FakeTelegram, FakeTwilio, FakeMeta, FakeOpenAI],
) -> Iterator[Line]:
    tg, tw, wa, llm = _simulators
    for server in (tg, tw, wa, llm):
        server.reset()
    tg.require_https_webhook = False
    settings.TELEGRAM_API_BASE_URL = tg.base_url
    settings.TWILIO_API_BASE_URL = tw.base_url
    settings.WHATSAPP_CLOUD_API_BASE_URL = wa.base_url
    settings.PUBLIC_BASE_URL = "http://localhost"
    settings.CHANNEL_BURST_SECONDS = 0
    settings.CHANNEL_HTTP_TIMEOUT = 5.0
    settings.LLM_READ_TIMEOUT = 5.0
    settings.LLM_CONNECT_TIMEOUT = 1.0
    _close_model_clients()
    assistant_on(alpha, llm)  # the model answers "Echo: <the visitor's text>"
    kind = request.param
    if kind == "telegram":
        channel = connect_telegram(alpha)
        yield Line(
            kind,
            channel,
            lambda text: post_telegram(
                client_public, channel, tg.update_text(text, chat_id=TELEGRAM_CHAT)
            ),
            lambda: [s.message["text"] for s in tg.sent(chat_id=TELEGRAM_CHAT)],
        )
    elif kind == "whatsapp_twilio":
        channel = connect_twilio(alpha)
        yield Line(
            kind,
            channel,
            lambda text: post_twilio(
                client_public, channel, tw.incoming(text, from_=TWILIO_PERSON)
            ),
            lambda: [m.body or "" for m in tw.sent(to=TWILIO_PERSON)],
        )
    else:
        channel = connect_meta(alpha)
        yield Line(
            kind,
            channel,
            lambda text: post_meta(
                client_public, channel, wa.message_text(text, from_=META_PERSON)
            ),
            lambda: [m.text or "" for m in wa.sent(to=META_PERSON)],
        )
    _close_model_clients()
    for server in (tg, tw, wa, llm):
        server.reset()


def channel_conversation(alpha: Company) -> Conversation:
    with tenant_context(alpha):
        return Conversation.objects.get()


def test_an_agents_message_reaches_the_messaging_channel_signed_with_their_name(
    line: Line, alpha: Company, team: Team
) -> None:
    line.write("Hello, I need help with my order")
    assert line.sent() == ["Echo: Hello, I need help with my order"]

    with tenant_context(alpha):
        agent_message_send(
            conversation=channel_conversation(alpha), agent=team.ana, text="Hola, soy Ana."
        )

    assert line.sent() == [
        "Echo: Hello, I need help with my order",
        ANA_JOINED,
        "Ana: Hola, soy Ana.",
    ]
    with tenant_context(alpha):
        agent_message = Message.objects.get(role=Message.Role.AGENT)
        assert list(
            OutboundMessage.objects.filter(message=agent_message).values_list("status", "text")
        ) == [("sent", "Ana: Hola, soy Ana.")]


def test_while_the_agent_has_it_the_bot_stays_silent_on_the_channel(
    line: Line, alpha: Company, team: Team
) -> None:
    line.write("Hello, I need help with my order")
    with tenant_context(alpha):
        conversation_take(conversation=channel_conversation(alpha), agent=team.ana)

    line.write("are you there?")

    assert line.sent() == ["Echo: Hello, I need help with my order", ANA_JOINED]
    with tenant_context(alpha):
        assert list(Message.objects.order_by("id").values_list("role", flat=True)) == [
            "visitor",
            "assistant",
            "system",
            "visitor",
        ]


# -- 8. the takeover race ---------------------------------------------------------------------


@pytest.fixture
def takeover_while_generating(
    monkeypatch: pytest.MonkeyPatch, team: Team
) -> Callable[[], list[int]]:
    """Ana takes the conversation the moment a bot reply starts being generated (its row is
    already "generating"); returns a function giving the ids of the replies she overtook."""
    overtaken: list[int] = []

    def take(chat: Conversation) -> None:
        generating = Message.objects.filter(
            conversation_id=chat.pk, status=Message.Status.GENERATING
        ).values_list("id", flat=True)
        overtaken.extend(generating)
        conversation_take(conversation=chat, agent=team.ana)

    monkeypatch.setattr(ReplyHooks, "starting", [take, *ReplyHooks.starting])
    return lambda: overtaken


def test_a_reply_overtaken_on_a_messaging_channel_is_discarded_and_never_sent(
    line: Line, alpha: Company, team: Team, takeover_while_generating: Callable[[], list[int]]
) -> None:
    line.write("Hello, I need help with my order")

    [overtaken] = takeover_while_generating()
    with tenant_context(alpha):
        reply = Message.objects.get(pk=overtaken)
        assert (reply.role, reply.status, reply.text) == (
            "assistant",
            "discarded",
            "Echo: Hello, I need help with my order",
        )
        assert not OutboundMessage.objects.filter(message=reply).exists()
        assert Event.objects.filter(kind="reply.discarded", message_id=reply.pk).count() == 1
        agent_message_send(conversation=channel_conversation(alpha), agent=team.ana, text="Hola")
    assert line.sent() == [ANA_JOINED, "Ana: Hola"]


def test_a_reply_overtaken_on_the_widget_is_withdrawn_and_the_agent_is_heard(
    alpha: Company, team: Team, widget_key: WidgetKey,
    takeover_while_generating: Callable[[], list[int]],
) -> None:  # fmt: skip
    def agent_writes() -> Message:
        with tenant_context(alpha):
            return agent_message_send(conversation=conversation(), agent=team.ana, text="Hola")

    async def scenario() -> tuple[list[Frame], list[Frame]]:
        comm = await widget_opened(widget_key.key)
        await comm.send_json_to({"type": "message", "client_id": "c-1", "text": "Hello"})
        while_generating = await frames_until_quiet(comm)
        await sync_to_async(agent_writes)()
        after = await frames_until_quiet(comm)
        await comm.disconnect()
        return while_generating, after

    while_generating, after = run(scenario)

    [overtaken] = takeover_while_generating()
    with tenant_context(alpha):
        reply = Message.objects.get(pk=overtaken)
        assert reply.status == Message.Status.DISCARDED
        agent_message = Message.objects.get(role=Message.Role.AGENT)
    kinds = [frame["type"] for frame in while_generating]
    assert while_generating[0]["message"]["role"] == "visitor"  # the echo
    assert while_generating[1:3] == [
        {"type": "mode", "mode": "human"},
        {"type": "message", "message": while_generating[2]["message"]},
    ]
    assert while_generating[2]["message"]["text"] == ANA_JOINED
    assert "delta" in kinds  # the reply had started to show…
    assert while_generating[-1] == {"type": "reset", "message_id": reply.pk}  # …and is withdrawn
    assert not any(
        frame["type"] == "message" and frame["message"]["id"] == reply.pk
        for frame in while_generating + after
    )
    assert after == [
        {
            "type": "message",
            "message": {
                "id": agent_message.pk,
                "role": "agent",
                "text": "Hola",
                "created_at": agent_message.created_at.isoformat(),
                "client_id": None,
                "author": "Ana",
            },
        }
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_overtaken_through_the_api_is_answered_with_no_response(
    company: Company, team: Team, takeover_while_generating: Callable[[], list[int]],
    stream: bool,
) -> None:  # fmt: skip
    # What POST /v1/chat waits for: the events of its reply channel (apps.api.views).
    async def scenario() -> tuple[Received, list[dict[str, Any]]]:
        layer = get_channel_layer()
        reply_channel = await layer.new_channel(prefix="api.reply")
        received = await sync_to_async(message_receive)(
            channel=Channel.API, session_id=SESSION, text="Hello",
            reply_channel=reply_channel, reply_deltas=stream,
        )  # fmt: skip
        events: list[dict[str, Any]] = []
        while True:
            try:
                events.append(await asyncio.wait_for(layer.receive(reply_channel), QUIET))
            except TimeoutError:
                return received, events

    received, events = run(scenario)

    [overtaken] = takeover_while_generating()
    assert Message.objects.get(pk=overtaken).status == Message.Status.DISCARDED
    discarded = {"type": "reply.discarded", "message_id": overtaken, "mode": "human"}
    if stream:
        # The partial answer was streamed; the request is told no answer comes.
        assert {event["type"] for event in events[:-1]} == {"reply.delta"}
        assert events[-1] == discarded
    else:
        assert events == [discarded]
    chat = received.conversation
    agent_message = agent_message_send(conversation=chat, agent=team.ana, text="Hola")
    # What the API client reads of the conversation: never the discarded reply.
    assert [(m.role, m.text) for m in conversation_messages_visible(chat)] == [
        ("visitor", "Hello"),
        ("system", ANA_JOINED),
        ("agent", "Hola"),
    ]
    assert conversation_messages_visible(chat)[-1].pk == agent_message.pk


# -- 9. isolation -----------------------------------------------------------------------------


def test_another_companys_agent_cannot_take_or_write_in_a_conversation(
    alpha: Company, beta: Company, team: Team
) -> None:
    with tenant_context(alpha):
        visitor_writes("I want to talk to a person")
        chat = conversation()
    intruder = teammate(beta, "Eva", Role.AGENT)

    with tenant_context(beta):
        assert not Conversation.objects.filter(pk=chat.pk).exists()
        with pytest.raises(Conversation.DoesNotExist):
            conversation_take(conversation=chat, agent=intruder)
        with pytest.raises(Conversation.DoesNotExist):
            agent_message_send(conversation=chat, agent=intruder, text="Hola desde beta")
        assert not Message.objects.exists()
        assert not Notification.objects.exists()

    with tenant_context(alpha):
        chat.refresh_from_db()
        assert (chat.mode, chat.agent_id) == (Conversation.Mode.PENDING_HUMAN, None)
        assert not Message.objects.filter(role=Message.Role.AGENT).exists()
        assert [text for role, _, text in transcript() if role == "system"] == [QUEUED]


def test_handoff_notifications_stay_in_the_companys_schema(
    alpha: Company, beta: Company, team: Team
) -> None:
    beta_agent = teammate(beta, "Eva", Role.AGENT)

    with tenant_context(alpha):
        visitor_writes("I want to talk to a person")
        chat = conversation()
        assert Notification.objects.filter(conversation_id=chat.pk).count() == 4

    with tenant_context(beta):
        assert not Notification.objects.exists()
        assert not Notification.objects.filter(user=beta_agent).exists()
        assert not Conversation.objects.exists()

    # And a handoff in beta notifies beta's team only.
    with tenant_context(beta):
        visitor_writes("I want to talk to a person")
        assert list(Notification.objects.values_list("user_id", flat=True).order_by("user_id")) == (
            sorted([owner(beta).pk, beta_agent.pk])
        )
    with tenant_context(alpha):
        assert Notification.objects.count() == 4


def test_a_handoff_request_from_a_rule_is_published_without_the_widget(
    company: Company, team: Team
) -> None:
    received = message_receive(
        channel=Channel.WEB, session_id=SESSION, text="Hello", generate=False
    )

    result = conversation_handoff_request(
        conversation=received.conversation, reason="visitor_asked"
    )
    again = conversation_handoff_request(
        conversation=received.conversation, reason="qualified_price"
    )

    assert result.changed is True and again.changed is False
    assert again.notice is None
    assert conversation().context["handoff"]["reason"] == "visitor_asked"
    assert Notification.objects.count() == 4


def test_a_message_the_caller_answers_is_read_into_the_lead_once(
    company: Company, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The widget and the messaging channels store a message and schedule its reply
    themselves: the lead is read by the reply task only, not also by the `unanswered` hook;
    once a person has the conversation, the hook reads it (no reply task will)."""
    from apps.leads import tasks as lead_tasks

    queued: list[int] = []
    monkeypatch.setattr(lead_tasks.message_process_task, "delay", queued.append)
    first = message_receive(channel=Channel.WEB, session_id=SESSION, text="Hola",
                            generate=False, caller_replies=True)  # fmt: skip
    assert queued == []
    conversation_take(conversation=first.conversation, agent=team.ana)
    second = message_receive(channel=Channel.WEB, session_id=SESSION, text="Sigo aquí",
                             generate=False, caller_replies=True)  # fmt: skip
    assert queued == [second.message.pk]
