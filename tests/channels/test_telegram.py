"""Telegram end to end: an update posted to the bot's webhook is stored once, answered by the
assistant (through a FakeOpenAI) and delivered to a local Bot API simulator (docs/channels/
telegram.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.channels.models import ChannelConnection, InboundEvent, OutboundMessage
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import reply_generate
from apps.tenants.models import Company
from tests.channels.conftest import (
    chat_requests,
    fixture,
    post_telegram,
    user_texts,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram

CHAT = 5120933746  # the private chat of the recorded updates (tests/channels/fixtures/)
QUESTION = "Hola! ¿Cuánto cuesta el plan anual para 3 usuarios?"


def stored(company: Company) -> tuple[int, int]:
    """(messages, inbound events) in `company`'s schema."""
    with tenant_context(company):
        return Message.objects.count(), InboundEvent.objects.count()


def send_requests(tg: FakeTelegram, method: str = "sendMessage") -> list[dict[str, Any]]:
    """The parameters the product posted to `method`, as it sent them, oldest first."""
    return [r.params for r in tg.requests if r.api_method == method]


# -- a message in, the answer out ---------------------------------------------------------------


def test_a_text_message_is_stored_and_answered_after_the_typing_indicator(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    response = post_telegram(client_public, telegram, fixture("telegram_text.json"))

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    # The model saw the person's words; the answer reached the chat, formatted as HTML.
    assert user_texts(chat_requests(llm)[-1]) == [QUESTION]
    # Exactly what the product posted to sendMessage (chat ids go as strings).
    assert send_requests(tg) == [
        {"chat_id": str(CHAT), "text": f"Echo: {QUESTION}", "parse_mode": "HTML"}
    ]
    [sent] = tg.sent(chat_id=CHAT)
    assert sent.message["text"] == f"Echo: {QUESTION}"
    # "typing…" first, then the answer.
    methods = [
        r.api_method for r in tg.requests if r.api_method in {"sendChatAction", "sendMessage"}
    ]
    assert methods == ["sendChatAction", "sendMessage"]
    assert send_requests(tg, "sendChatAction") == [{"chat_id": str(CHAT), "action": "typing"}]
    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == QUESTION
        assert visitor.channel == "telegram"
        assert visitor.external_id == f"{telegram.pk}:734091122"
        conversation = visitor.conversation
        assert conversation.session_id == f"{telegram.pk}:{CHAT}"
        assert conversation.context["channel_id"] == telegram.pk
        assert conversation.context["language"] == "es"
        assert conversation.contact.name == "Laura Gómez"
        reply = Message.objects.get(role=Message.Role.ASSISTANT)
        assert reply.reply_to_id == visitor.pk
        assert reply.status == Message.Status.COMPLETED
        [part] = OutboundMessage.objects.filter(message=reply)
        assert (part.status, part.attempts, part.text) == ("sent", 1, reply.text)
        assert part.provider_message_id == str(sent.message_id)
        [event] = InboundEvent.objects.all()
        assert (event.provider_id, event.kind, event.outcome) == (
            "734091122",
            "message.text",
            "message",
        )
        assert event.message_id == visitor.pk
        assert ChannelConnection.objects.get(pk=telegram.pk).last_update_at is not None


def test_bold_and_links_arrive_as_html_and_everything_else_is_escaped(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    tg.strict_html = True  # a bare "&" or ">" would be refused too
    llm.queue_reply(
        "Precio < 100 USD & **envío gratis** -> mira [la tienda](https://shop.example.com/p?a=1&b=2)"
        ' o escribe "hola".'
    )

    post_telegram(client_public, telegram, tg.update_text("precio?", chat_id=CHAT))

    [sent] = tg.sent(chat_id=CHAT)
    assert sent.parse_mode == "HTML"
    assert sent.text == (
        "Precio &lt; 100 USD &amp; <b>envío gratis</b> -&gt; mira "
        '<a href="https://shop.example.com/p?a=1&amp;b=2">la tienda</a> o escribe "hola".'
    )
    # What the person reads, and the formatting Telegram applied.
    assert sent.message["text"] == (
        'Precio < 100 USD & envío gratis -> mira la tienda o escribe "hola".'
    )
    entities = {(e["type"], e.get("url")) for e in sent.message["entities"]}
    assert entities == {("bold", None), ("text_link", "https://shop.example.com/p?a=1&b=2")}


def test_formatting_telegram_refuses_is_sent_again_as_plain_text(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    # Bold opened inside a link and closed after it: tags that do not nest.
    text = "Mira [**el catálogo](https://shop.example.com) completo** hoy."
    llm.queue_reply(text)

    post_telegram(client_public, telegram, tg.update_text("catálogo", chat_id=CHAT))

    attempts = send_requests(tg)
    assert len(attempts) == 2
    assert attempts[0]["parse_mode"] == "HTML"
    assert attempts[1] == {"chat_id": str(CHAT), "text": text}
    [sent] = tg.sent(chat_id=CHAT)
    assert sent.parse_mode is None and sent.text == text
    with tenant_context(company):
        assert OutboundMessage.objects.get().status == "sent"


# -- the secret token -------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "not-the-secret", "x" * 43])
def test_a_request_without_the_right_secret_token_gets_403_and_nothing_is_stored(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
    secret: str,
) -> None:
    response = post_telegram(client_public, telegram, fixture("telegram_text.json"), secret=secret)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert stored(company) == (0, 0)
    with tenant_context(company):
        assert Contact.objects.count() == 0
    assert tg.sent() == [] and chat_requests(llm) == []


def test_the_secret_is_checked_before_the_body_is_parsed(
    company: Company, telegram: ChannelConnection, client_public: Client
) -> None:
    assert post_telegram(client_public, telegram, b"{not json", secret="wrong").status_code == 403
    assert post_telegram(client_public, telegram, b"{not json").status_code == 400


# -- once per update_id -----------------------------------------------------------------------


def test_a_replayed_update_is_acknowledged_stored_and_answered_once(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    update = fixture("telegram_text.json")

    first = post_telegram(client_public, telegram, update)
    again = post_telegram(client_public, telegram, update)

    assert (first.status_code, again.status_code) == (200, 200)
    assert stored(company) == (2, 1)  # the message and its reply; one event
    assert len(tg.sent(chat_id=CHAT)) == 1
    assert len(chat_requests(llm)) == 1


def test_updates_whose_ids_go_down_are_all_handled(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    client_public: Client,
) -> None:
    later = fixture("telegram_text.json")
    earlier = fixture("telegram_text.json")
    earlier["update_id"] = later["update_id"] - 50
    earlier["message"]["message_id"] -= 1
    earlier["message"]["text"] = "¿Y el mensual?"

    post_telegram(client_public, telegram, later)
    post_telegram(client_public, telegram, earlier)

    assert [s.text for s in tg.sent(chat_id=CHAT)] == [f"Echo: {QUESTION}", "Echo: ¿Y el mensual?"]
    with tenant_context(company):
        ids = set(InboundEvent.objects.values_list("provider_id", flat=True))
        assert ids == {"734091122", "734091072"}
        assert Message.objects.filter(role=Message.Role.VISITOR).count() == 2


# -- bursts ------------------------------------------------------------------------------------


def test_three_messages_in_a_row_get_one_answer_that_sees_all_three(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
    held_replies: list[int],
) -> None:
    words = ["Hola", "quiero el plan anual", "¿aceptan tarjeta?"]
    for text in words:
        assert (
            post_telegram(client_public, telegram, tg.update_text(text, chat_id=CHAT)).status_code
            == 200
        )
    assert len(held_replies) == 3 and tg.sent() == []

    with tenant_context(company):
        answers = [reply_generate(message_id=message_id) for message_id in held_replies]

        assert answers[0] is None and answers[1] is None  # the burst went on
        assert answers[2] is not None
        assert answers[2].reply_to_id == held_replies[2]
        assert Message.objects.filter(role=Message.Role.ASSISTANT).count() == 1
    [request] = chat_requests(llm)
    assert user_texts(request) == words
    assert [s.text for s in tg.sent(chat_id=CHAT)] == ["Echo: ¿aceptan tarjeta?"]


# -- media, contacts, locations ----------------------------------------------------------------


def test_a_photo_is_stored_with_its_largest_size_and_its_caption_is_the_text(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    update = fixture("telegram_photo.json")

    post_telegram(client_public, telegram, update)

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "¿Tienen este modelo en negro?"
        assert visitor.attachments == [
            {"type": "photo", "file_id": update["message"]["photo"][-1]["file_id"]}
        ]
        assert InboundEvent.objects.get().kind == "message.photo"
    assert user_texts(chat_requests(llm)[-1]) == ["¿Tienen este modelo en negro?"]
    assert [s.text for s in tg.sent(chat_id=CHAT)] == ["Echo: ¿Tienen este modelo en negro?"]


def file_id_of(update: dict) -> str | None:
    """The file the product should keep: the largest photo size, or the media's file."""
    message = update["message"]
    if "photo" in message:
        return message["photo"][-1]["file_id"]
    media = message.get("document") or message.get("voice")
    return media["file_id"] if media else None


@pytest.mark.parametrize(
    ("build", "kind", "text", "attachment"),
    [
        (
            lambda tg: tg.update_photo(chat_id=CHAT),
            "message.photo",
            "[Foto]",
            {"type": "photo"},
        ),
        (
            lambda tg: tg.update_document(
                file_name="cotizacion.pdf", caption="mi cotización", chat_id=CHAT
            ),
            "message.document",
            "mi cotización",
            {"type": "document", "mime_type": "application/pdf", "file_name": "cotizacion.pdf"},
        ),
        (
            lambda tg: tg.update_voice(duration=7, chat_id=CHAT),
            "message.voice",
            "[Nota de voz]",
            {"type": "voice", "mime_type": "audio/ogg", "file_name": ""},
        ),
        (
            lambda tg: tg.update_location(4.6482837, -74.2478938, chat_id=CHAT),
            "message.location",
            "[Ubicación: 4.6482837, -74.2478938]",
            {"type": "location", "latitude": 4.6482837, "longitude": -74.2478938},
        ),
    ],
    ids=["photo", "document", "voice", "location"],
)
def test_media_and_locations_are_stored_as_attachments_with_a_label(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
    build: Callable[[FakeTelegram], dict[str, Any]],
    kind: str,
    text: str,
    attachment: dict[str, Any],
) -> None:
    update = build(tg)

    assert post_telegram(client_public, telegram, update).status_code == 200

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == text
        [kept] = visitor.attachments
        assert attachment.items() <= kept.items()
        assert kept.get("file_id") == file_id_of(update)
        event = InboundEvent.objects.get()
        assert (event.kind, event.payload["attachments"]) == (kind, visitor.attachments)
    # The assistant is shown the label, and answers.
    assert user_texts(chat_requests(llm)[-1]) == [text]
    assert [s.text for s in tg.sent(chat_id=CHAT)] == [f"Echo: {text}"]


def test_a_contact_shared_of_oneself_fills_the_contacts_phone(
    company: Company, telegram: ChannelConnection, tg: FakeTelegram, client_public: Client
) -> None:
    post_telegram(client_public, telegram, fixture("telegram_contact_own.json"))

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "[Contacto: Laura Gómez +573001234567]"
        assert visitor.attachments == [
            {"type": "contact", "phone": "+573001234567", "name": "Laura Gómez"}
        ]
        contact = visitor.conversation.contact
        assert (contact.phone, contact.name) == ("+573001234567", "Laura Gómez")


def test_someone_elses_contact_is_stored_but_does_not_change_the_phone(
    company: Company, telegram: ChannelConnection, tg: FakeTelegram, client_public: Client
) -> None:
    update = tg.update_contact("573009998877", "Pedro", own=False, contact_user_id=99001122)

    post_telegram(client_public, telegram, update)

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.attachments == [
            {"type": "contact", "phone": "+573009998877", "name": "Pedro"}
        ]
        assert visitor.conversation.contact.phone == ""


# -- /start ------------------------------------------------------------------------------------


def test_start_with_a_deep_link_payload_sends_the_welcome_without_the_model(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    with tenant_context(company):
        from apps.assistants.services import assistant_profile_get

        welcome = assistant_profile_get().welcome_message

    assert (
        post_telegram(client_public, telegram, fixture("telegram_start_deeplink.json")).status_code
        == 200
    )

    assert chat_requests(llm) == []
    assert send_requests(tg) == [{"chat_id": str(CHAT), "text": welcome, "parse_mode": "HTML"}]
    assert [s.message["text"] for s in tg.sent(chat_id=CHAT)] == [welcome]
    with tenant_context(company):
        conversation = Conversation.objects.get()
        assert conversation.context["start_payload"] == "campana-ig-julio"
        reply = Message.objects.get(role=Message.Role.ASSISTANT)
        assert (reply.text, reply.provider, reply.status) == (welcome, "welcome", "completed")
        assert reply.reply_to.text == "/start campana-ig-julio"
        assert InboundEvent.objects.get().kind == "message.start"
        assert OutboundMessage.objects.get(message=reply).status == "sent"


def test_start_without_a_payload_stores_none(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    post_telegram(client_public, telegram, tg.update_start(chat_id=CHAT))

    assert chat_requests(llm) == []
    assert len(tg.sent(chat_id=CHAT)) == 1
    with tenant_context(company):
        assert "start_payload" not in Conversation.objects.get().context


# -- groups and other updates ------------------------------------------------------------------


def test_a_group_chat_is_declined_with_a_notice_and_nothing_is_stored_as_a_message(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    response = post_telegram(client_public, telegram, fixture("telegram_group.json"))

    assert response.status_code == 200
    [notice] = tg.sent(chat_id=-1001987654321)
    assert notice.message["text"] == (
        "¡Hola! Solo converso por mensaje privado: escríbeme a @chapi_test_bot."
    )
    assert chat_requests(llm) == []
    with tenant_context(company):
        assert Message.objects.count() == 0
        assert Conversation.objects.count() == 0
        assert Contact.objects.count() == 0
        [event] = InboundEvent.objects.all()
        assert (event.kind, event.outcome, event.reason) == (
            "message.group",
            "ignored",
            "group chats are declined",
        )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("telegram_edited_message.json", "update.edited_message"),
        ("telegram_callback_query.json", "update.callback_query"),
    ],
)
def test_updates_that_are_not_handled_are_acknowledged_and_recorded(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    llm: FakeOpenAI,
    client_public: Client,
    name: str,
    kind: str,
) -> None:
    update = fixture(name)

    assert post_telegram(client_public, telegram, update).status_code == 200
    assert post_telegram(client_public, telegram, update).status_code == 200  # a replay too

    with tenant_context(company):
        [event] = InboundEvent.objects.all()
        assert (event.provider_id, event.kind, event.outcome) == (
            str(update["update_id"]),
            kind,
            "ignored",
        )
        assert Message.objects.count() == 0
    assert tg.sent() == [] and chat_requests(llm) == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"update"',
        json.dumps({"message": {"text": "hola"}}).encode(),  # no update_id
        json.dumps({"update_id": "12", "message": {}}).encode(),  # not a number
        b"",
    ],
    ids=["not-json", "list", "string", "no-update-id", "string-id", "empty"],
)
def test_a_malformed_body_gets_400_and_nothing_is_stored(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    client_public: Client,
    body: bytes,
) -> None:
    response = post_telegram(client_public, telegram, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"
    assert stored(company) == (0, 0)
    assert tg.sent() == []


def test_the_typing_indicator_failing_does_not_stop_the_answer(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    client_public: Client,
) -> None:
    tg.queue_fault("500", method="sendChatAction")

    post_telegram(client_public, telegram, fixture("telegram_text.json"))

    assert [s.text for s in tg.sent(chat_id=CHAT)] == [f"Echo: {QUESTION}"]
