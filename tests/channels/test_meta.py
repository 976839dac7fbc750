"""WhatsApp through Meta's Cloud API end to end: signed notifications in, answers out to a
local Graph API simulator, statuses back, and the GET verification handshake (docs/channels/
whatsapp-meta.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.analytics.models import Event
from apps.audit.services import SYSTEM
from apps.channels.adapters import SendError
from apps.channels.models import ChannelConnection, InboundEvent, OutboundMessage
from apps.channels.services import channel_disconnect, template_send
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import reply_generate
from apps.tenants.models import Company
from tests.channels.conftest import (
    META_PHONE_ID,
    META_TOKEN,
    chat_requests,
    fixture,
    hook_path,
    post_meta,
    user_texts,
)
from tests.fakes import meta_server
from tests.fakes.meta_server import FakeMeta
from tests.fakes.openai_server import FakeOpenAI

PERSON = "5215587654321"  # the sender of the recorded notifications (tests/channels/fixtures/)
WAMID = "wamid.HBgNNTIxNTU4NzY1NDMyMRUCABIYFjNFQjBDMEE2QjQ3MzY1RjQ1RjEyAA=="
QUESTION = "Hola, quiero cotizar 20 uniformes con logo"


def stored(company: Company) -> tuple[int, int]:
    with tenant_context(company):
        return Message.objects.count(), InboundEvent.objects.count()


def message_requests(wa: FakeMeta) -> list[dict]:
    """The JSON bodies the product posted to /messages, oldest first."""
    return [
        json.loads(r.raw)
        for r in wa.requests
        if r.method == "POST" and r.path.endswith("/messages")
    ]


def test_a_message_is_answered_through_the_cloud_api_with_the_exact_payload(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    response = post_meta(client_public, meta, fixture("meta_text.json"))

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert user_texts(chat_requests(llm)[-1]) == [QUESTION]
    assert message_requests(wa) == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": PERSON,
            "type": "text",
            "text": {"body": f"Echo: {QUESTION}", "preview_url": False},
        }
    ]
    request = wa.last_request
    assert request.path == f"/v21.0/{META_PHONE_ID}/messages"
    assert request.access_token == META_TOKEN
    [sent] = wa.sent(to=PERSON)
    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert (visitor.text, visitor.channel) == (QUESTION, "whatsapp")
        assert visitor.external_id == f"{meta.pk}:{WAMID}"
        contact = visitor.conversation.contact
        assert (contact.name, contact.phone) == ("Mateo Herrera", "+5215587654321")
        [part] = OutboundMessage.objects.all()
        assert (part.status, part.provider_message_id) == ("sent", sent.id)
        assert part.provider_message_id.startswith("wamid.")


def test_one_notification_with_two_messages_stores_and_answers_both(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    post_meta(client_public, meta, fixture("meta_batch.json"))

    assert [m.text for m in wa.sent(to=PERSON)] == ["Echo: ¿Tienen talla XL?"]
    assert [m.text for m in wa.sent(to="5215511223344")] == ["Echo: Buenas, ¿abren el domingo?"]
    with tenant_context(company):
        names = set(Contact.objects.values_list("name", flat=True))
        assert names == {"Mateo Herrera", "Sofía Ruiz"}
        assert Conversation.objects.count() == 2


# -- the signature ----------------------------------------------------------------------------


@pytest.mark.parametrize("forge", ["missing", "other-secret", "tampered", "sha1-only", "bare-hex"])
def test_a_notification_without_the_right_signature_gets_403_and_nothing_is_stored(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    llm: FakeOpenAI,
    client_public: Client,
    forge: str,
) -> None:
    body = meta_server.payload_bytes(fixture("meta_text.json"))
    secret = meta.app_secret.encode()
    signature = {
        "missing": "",
        "other-secret": meta_server.signature(body, "another-app-secret"),
        "tampered": meta_server.signature(
            body.replace(b"20 uniformes", b"90 uniformes"), meta.app_secret
        ),
        "sha1-only": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest(),
        "bare-hex": hmac.new(secret, body, hashlib.sha256).hexdigest(),
    }[forge]

    response = post_meta(client_public, meta, body, signature=signature)

    assert response.status_code == 403
    assert stored(company) == (0, 0)
    assert wa.sent() == [] and chat_requests(llm) == []


def test_the_signature_covers_the_raw_bytes_as_meta_sent_them(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    # Meta escapes non-ASCII as \\uXXXX; the same JSON serialised differently is another body.
    payload = fixture("meta_text.json")
    as_sent = meta_server.payload_bytes(payload)
    reserialised = json.dumps(payload, ensure_ascii=False).encode()

    wrong = post_meta(
        client_public, meta, reserialised, signature=meta_server.signature(as_sent, meta.app_secret)
    )
    right = post_meta(client_public, meta, as_sent)

    assert (wrong.status_code, right.status_code) == (403, 200)


# -- once per message id; statuses once per (id, status) ------------------------------------------


def test_a_redelivered_notification_is_stored_and_answered_once(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    payload = fixture("meta_text.json")

    assert post_meta(client_public, meta, payload).status_code == 200
    assert post_meta(client_public, meta, payload).status_code == 200

    assert stored(company) == (2, 1)
    assert len(wa.sent(to=PERSON)) == 1
    assert len(chat_requests(llm)) == 1


# -- media, locations, other types --------------------------------------------------------------


def test_an_image_is_stored_with_its_media_id_and_its_caption_is_the_text(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    post_meta(client_public, meta, fixture("meta_image.json"))

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "Este es el logo"
        assert visitor.attachments == [
            {
                "type": "image",
                "media_id": "1418372282164793",
                "mime_type": "image/jpeg",
                "file_name": "",
            }
        ]
        assert InboundEvent.objects.get().kind == "message.image"
    assert [m.text for m in wa.sent(to=PERSON)] == ["Echo: Este es el logo"]


def test_an_image_without_a_caption_is_labelled(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    post_meta(client_public, meta, wa.message_image(from_=PERSON))

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "[Foto]"
        assert visitor.attachments[0]["type"] == "image"


def test_a_location_is_stored_with_the_message(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    post_meta(client_public, meta, fixture("meta_location.json"))

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "[Ubicación: 19.4326018, -99.1332049]"
        assert visitor.attachments == [
            {"type": "location", "latitude": 19.4326018, "longitude": -99.1332049}
        ]


def test_a_button_reply_is_answered_as_text(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    post_meta(client_public, meta, wa.message_interactive("plan-anual", "Plan anual", from_=PERSON))

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "Plan anual"
    assert [m.text for m in wa.sent(to=PERSON)] == ["Echo: Plan anual"]


@pytest.mark.parametrize("kind", ["reaction", "unsupported"])
def test_other_message_types_are_acknowledged_and_recorded(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    llm: FakeOpenAI,
    client_public: Client,
    kind: str,
) -> None:
    payload = fixture("meta_reaction.json") if kind == "reaction" else wa.message_unsupported()

    assert post_meta(client_public, meta, payload).status_code == 200

    with tenant_context(company):
        event = InboundEvent.objects.get()
        assert (event.kind, event.outcome) == (f"message.{kind}", "ignored")
        assert Message.objects.count() == 0
    assert wa.sent() == [] and chat_requests(llm) == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        json.dumps({"object": "page", "entry": []}).encode(),
        json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [{"changes": [{"value": {"messages": [{"type": "text"}]}}]}],
            }
        ).encode(),
        json.dumps({"object": "whatsapp_business_account", "entry": "nope"}).encode(),
    ],
    ids=["not-json", "list", "other-object", "message-without-id", "entry-not-a-list"],
)
def test_a_malformed_notification_gets_400_and_nothing_is_stored(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client, body: bytes
) -> None:
    response = post_meta(client_public, meta, body)

    assert response.status_code == 400
    assert stored(company) == (0, 0)


# -- the verification handshake ------------------------------------------------------------------


def test_the_verify_handshake_echoes_the_challenge_as_plain_text(
    company: Company, meta: ChannelConnection, client_public: Client
) -> None:
    response = client_public.get(
        hook_path(meta),
        {
            "hub.mode": "subscribe",
            "hub.challenge": "1158201444",
            "hub.verify_token": "mi-token-de-verificacion",
        },
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "otro-token"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {
            "hub.mode": "unsubscribe",
            "hub.challenge": "1",
            "hub.verify_token": "mi-token-de-verificacion",
        },
        {},
    ],
    ids=["wrong-token", "no-token", "wrong-mode", "nothing"],
)
def test_a_wrong_verify_handshake_gets_403(
    company: Company, meta: ChannelConnection, client_public: Client, query: dict[str, str]
) -> None:
    response = client_public.get(hook_path(meta), query)

    assert response.status_code == 403
    assert b"1158201444" not in response.content


# -- bursts, the 24-hour window, templates --------------------------------------------------------


def test_three_messages_in_a_row_get_one_answer_that_sees_all_three(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    llm: FakeOpenAI,
    client_public: Client,
    held_replies: list[int],
) -> None:
    words = ["Hola", "soy de Puebla", "¿cuánto cuesta el envío?"]
    for text in words:
        post_meta(client_public, meta, wa.message_text(text, from_=PERSON))

    with tenant_context(company):
        answers = [reply_generate(message_id=message_id) for message_id in held_replies]

    assert [a is None for a in answers] == [True, True, False]
    assert user_texts(chat_requests(llm)[-1]) == words
    assert [m.text for m in wa.sent(to=PERSON)] == ["Echo: ¿cuánto cuesta el envío?"]


def test_outside_the_24_hour_window_a_free_form_reply_is_not_sent(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    client_public: Client,
    held_replies: list[int],
) -> None:
    post_meta(client_public, meta, fixture("meta_text.json"))
    with tenant_context(company):
        Message.objects.filter(pk=held_replies[0]).update(
            created_at=timezone.now() - timedelta(hours=30)
        )

        reply = reply_generate(message_id=held_replies[0])

        assert reply is not None
        [part] = OutboundMessage.objects.filter(message=reply)
        assert part.status == "failed"
        assert part.error == (
            "outside WhatsApp's 24-hour window: only approved templates may be sent"
        )
    assert message_requests(wa) == []


def test_an_approved_template_is_sent_with_metas_exact_payload(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    post_meta(client_public, meta, fixture("meta_text.json"))
    template = {
        "name": "seguimiento_pedido",
        "language": "es_MX",
        "body": "Hola {{1}}, tu pedido {{2}}",
    }
    with tenant_context(company):
        ChannelConnection.objects.filter(pk=meta.pk).update(templates=[template])
        Message.objects.filter(role=Message.Role.VISITOR).update(
            created_at=timezone.now() - timedelta(days=2)
        )
        conversation = Conversation.objects.get()
        before = len(message_requests(wa))

        outbound = template_send(
            conversation=conversation,
            template_name="seguimiento_pedido",
            variables={"1": "Mateo", "2": "#4471"},
        )

        assert message_requests(wa)[before:] == [
            {
                "messaging_product": "whatsapp",
                "to": PERSON,
                "type": "template",
                "template": {
                    "name": "seguimiento_pedido",
                    "language": {"code": "es_MX"},
                    "components": [
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": "Mateo"},
                                {"type": "text", "text": "#4471"},
                            ],
                        }
                    ],
                },
            }
        ]
        [sent] = [m for m in wa.sent(to=PERSON) if m.type == "template"]
        outbound.refresh_from_db()
        assert (outbound.status, outbound.provider_message_id) == ("sent", sent.id)
        assert outbound.template == "seguimiento_pedido"


def test_a_template_is_not_sent_on_a_disconnected_channel(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    post_meta(client_public, meta, fixture("meta_text.json"))
    with tenant_context(company):
        ChannelConnection.objects.filter(pk=meta.pk).update(
            templates=[{"name": "seguimiento", "language": "es", "body": "¿Seguimos?"}]
        )
        channel_disconnect(channel=ChannelConnection.objects.get(pk=meta.pk), actor=SYSTEM)
        before = len(message_requests(wa))

        with pytest.raises(SendError, match="disconnected"):
            template_send(conversation=Conversation.objects.get(), template_name="seguimiento")

        assert not Message.objects.filter(provider="template").exists()
    assert len(message_requests(wa)) == before


# -- statuses -----------------------------------------------------------------------------------


@pytest.fixture
def answered(company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client) -> str:
    """The wamid of the answer sent to the recorded message."""
    post_meta(client_public, meta, fixture("meta_text.json"))
    [sent] = wa.sent(to=PERSON)
    return sent.id


def part_of(company: Company, wamid: str) -> OutboundMessage:
    with tenant_context(company):
        return OutboundMessage.objects.get(provider_message_id=wamid)


def test_statuses_move_a_part_forward_only(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    client_public: Client,
    answered: str,
) -> None:
    for status, expected in [("sent", "sent"), ("read", "read"), ("delivered", "read")]:
        assert post_meta(client_public, meta, wa.status(answered, status)).status_code == 200
        assert part_of(company, answered).status == expected


def test_a_batch_of_statuses_is_applied_and_each_recorded_once(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    client_public: Client,
    answered: str,
) -> None:
    batch = wa.combine(wa.status(answered, "sent"), wa.status(answered, "delivered"))

    post_meta(client_public, meta, batch)
    post_meta(client_public, meta, batch)

    assert part_of(company, answered).status == "delivered"
    with tenant_context(company):
        ids = sorted(
            InboundEvent.objects.filter(outcome="status").values_list("provider_id", flat=True)
        )
        assert ids == [f"status:{answered}:delivered", f"status:{answered}:sent"]


def test_a_failed_status_is_recorded_with_its_error(
    company: Company, meta: ChannelConnection, client_public: Client, answered: str
) -> None:
    payload = fixture("meta_status_failed.json")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = answered

    assert post_meta(client_public, meta, payload).status_code == 200

    part = part_of(company, answered)
    assert (part.status, part.error) == ("failed", "Meta error 131047: Re-engagement message")


# -- blocked and failing sends ------------------------------------------------------------------


def test_an_undeliverable_number_stops_at_once_and_marks_the_contact_unreachable(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    wa.queue_fault("131026")

    post_meta(client_public, meta, fixture("meta_text.json"))

    assert len(message_requests(wa)) == 1  # no retries
    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert part.status == "failed"
        assert part.error.startswith("Meta error 131026")
        assert Contact.objects.get().unreachable is True
        [event] = Event.objects.filter(kind="delivery.failed")
        assert event.data["unreachable"] is True

    # Writing again makes the person reachable again.
    post_meta(client_public, meta, wa.message_text("¿sigues ahí?", from_=PERSON))
    with tenant_context(company):
        assert Contact.objects.get().unreachable is False
    assert [m.text for m in wa.sent(to=PERSON)] == ["Echo: ¿sigues ahí?"]


def test_a_closed_window_at_meta_stops_without_marking_unreachable(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    wa.queue_fault("131047")

    post_meta(client_public, meta, fixture("meta_text.json"))

    assert len(message_requests(wa)) == 1
    with tenant_context(company):
        assert OutboundMessage.objects.get().status == "failed"
        assert Contact.objects.get().unreachable is False


@pytest.mark.parametrize(
    ("fault", "options"),
    [("429", {}), ("429", {"code": 80007}), ("500", {})],
    ids=["130429", "80007", "131000"],
)
def test_rate_limits_and_server_errors_are_retried_and_the_answer_delivered(
    company: Company,
    meta: ChannelConnection,
    wa: FakeMeta,
    client_public: Client,
    eager_retries: None,
    fault: str,
    options: dict,
) -> None:
    wa.queue_fault(fault, **options)  # type: ignore[arg-type]

    post_meta(client_public, meta, fixture("meta_text.json"))

    assert len(message_requests(wa)) == 2
    [sent] = wa.sent(to=PERSON)
    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert (part.status, part.attempts, part.provider_message_id) == ("sent", 2, sent.id)


def test_messages_for_another_number_of_the_same_app_are_not_handled_here(
    company: Company, meta: ChannelConnection, wa: FakeMeta, client_public: Client
) -> None:
    # One Meta app posts every number's traffic to one callback URL.
    payload = wa.message_text("Hola desde otro número", phone_number_id="999000111222")

    assert post_meta(client_public, meta, payload).status_code == 200

    with tenant_context(company):
        assert not Message.objects.exists()
        [event] = InboundEvent.objects.all()
        assert (event.outcome, event.kind) == ("ignored", "change.other_number")
    assert message_requests(wa) == []
