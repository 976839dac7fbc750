"""WhatsApp through Twilio end to end: signed form posts in, answers out through the real
`twilio` SDK to a local Messages API simulator, status callbacks back (docs/channels/
whatsapp-twilio.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.channels.adapters import SendError
from apps.channels.models import ChannelConnection, InboundEvent, OutboundMessage
from apps.channels.services import template_send, webhook_url
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import reply_generate
from apps.tenants.models import Company
from tests.channels.conftest import (
    TWILIO_SENDER,
    chat_requests,
    fixture,
    post_twilio,
    user_texts,
)
from tests.fakes import twilio_server
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.twilio_server import FakeTwilio

PERSON = "whatsapp:+573104567890"  # the sender of the recorded posts (tests/channels/fixtures/)
QUESTION = "Buenas tardes, ¿hacen envíos a Medellín?"
CONTENT_SID = "HX" + "b7" * 16


def stored(company: Company) -> tuple[int, int]:
    with tenant_context(company):
        return Message.objects.count(), InboundEvent.objects.count()


def test_an_inbound_message_is_answered_through_the_messages_api(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    response = post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))

    # An empty TwiML answer: Twilio sends nothing by itself.
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content == b"<Response/>"
    assert user_texts(chat_requests(llm)[-1]) == [QUESTION]
    [sent] = tw.sent(to=PERSON)
    assert sent.from_ == TWILIO_SENDER
    assert sent.body == f"Echo: {QUESTION}"
    assert sent.status_callback == f"http://localhost/hooks/twilio/{twilio.webhook_id}/status"
    assert sent.status_callback == webhook_url(twilio, status=True)
    assert sent.content_sid is None
    assert tw.last_request.auth == (twilio.account_sid, twilio.auth_token)
    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert (visitor.text, visitor.channel) == (QUESTION, "whatsapp")
        assert visitor.external_id == f"{twilio.pk}:SM1f0e8a3c9b7d4e2fa6c5b4d3e2f1a0b9"
        assert visitor.conversation.session_id == f"{twilio.pk}:+573104567890"
        contact = visitor.conversation.contact
        assert (contact.name, contact.phone) == ("Camila Ríos", "+573104567890")
        [part] = OutboundMessage.objects.all()
        assert (part.status, part.provider_message_id, part.attempts) == ("sent", sent.sid, 1)


# -- signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forge",
    ["missing", "another-token", "another-url", "tampered", "garbage"],
)
def test_a_request_whose_signature_does_not_match_gets_403_and_nothing_is_stored(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    llm: FakeOpenAI,
    client_public: Client,
    forge: str,
) -> None:
    params = fixture("twilio_inbound_text.json")
    path = f"/hooks/twilio/{twilio.webhook_id}"
    signature = {
        "missing": "",
        "another-token": twilio_server.signature("http://localhost" + path, params, "f" * 32),
        "another-url": twilio_server.signature(
            "http://localhost/hooks/twilio/other", params, twilio.auth_token
        ),
        "tampered": twilio_server.signature(
            "http://localhost" + path, {**params, "Body": "hola"}, twilio.auth_token
        ),
        "garbage": "bm90IGEgc2lnbmF0dXJl",
    }[forge]

    response = post_twilio(client_public, twilio, params, signature=signature)

    assert response.status_code == 403
    assert stored(company) == (0, 0)
    assert tw.sent() == [] and chat_requests(llm) == []


def test_the_signature_is_checked_against_the_public_base_url(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    client_public: Client,
    settings: Settings,
) -> None:
    # Behind a proxy: Twilio called (and signed) the public https URL pasted into its console.
    settings.PUBLIC_BASE_URL = "https://chapi.example.com"
    params = fixture("twilio_inbound_text.json")
    path = f"/hooks/twilio/{twilio.webhook_id}"

    signed_public = twilio_server.signature(
        "https://chapi.example.com" + path, params, twilio.auth_token
    )
    response = post_twilio(client_public, twilio, params, signature=signed_public, path=path)
    assert response.status_code == 200
    assert len(tw.sent(to=PERSON)) == 1


# -- once per MessageSid -------------------------------------------------------------------------


def test_a_retried_post_is_stored_and_answered_once(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    params = fixture("twilio_inbound_text.json")

    assert post_twilio(client_public, twilio, params).status_code == 200
    assert post_twilio(client_public, twilio, params).status_code == 200

    assert stored(company) == (2, 1)
    assert len(tw.sent(to=PERSON)) == 1
    assert len(chat_requests(llm)) == 1


# -- media and locations ------------------------------------------------------------------------


def test_media_is_stored_with_the_message(
    company: Company, twilio: ChannelConnection, tw: FakeTwilio, client_public: Client
) -> None:
    params = fixture("twilio_inbound_media.json")

    post_twilio(client_public, twilio, params)

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "[Archivo adjunto]"
        assert visitor.attachments == [
            {"type": "media", "url": params["MediaUrl0"], "mime_type": "image/jpeg"}
        ]
        assert InboundEvent.objects.get().kind == "message.media"
    assert [m.body for m in tw.sent(to=PERSON)] == ["Echo: [Archivo adjunto]"]


def test_several_media_with_a_caption(
    company: Company, twilio: ChannelConnection, tw: FakeTwilio, client_public: Client
) -> None:
    params = tw.incoming(
        "Mira estas fotos",
        from_=PERSON,
        media=[("image/jpeg", b"\xff\xd8 one"), ("application/pdf", b"%PDF two")],
    )

    post_twilio(client_public, twilio, params)

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "Mira estas fotos"
        assert [(a["url"], a["mime_type"]) for a in visitor.attachments] == [
            (params["MediaUrl0"], "image/jpeg"),
            (params["MediaUrl1"], "application/pdf"),
        ]


def test_a_shared_location_is_stored_with_the_message(
    company: Company, twilio: ChannelConnection, tw: FakeTwilio, client_public: Client
) -> None:
    post_twilio(client_public, twilio, fixture("twilio_inbound_location.json"))

    with tenant_context(company):
        visitor = Message.objects.get(role=Message.Role.VISITOR)
        assert visitor.text == "[Ubicación: 6.2476376, -75.5658153]"
        assert visitor.attachments == [
            {"type": "location", "latitude": "6.2476376", "longitude": "-75.5658153"}
        ]
        assert InboundEvent.objects.get().kind == "message.location"


def test_an_empty_message_is_recorded_and_not_answered(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    llm: FakeOpenAI,
    client_public: Client,
) -> None:
    assert post_twilio(client_public, twilio, tw.incoming("", from_=PERSON)).status_code == 200

    with tenant_context(company):
        event = InboundEvent.objects.get()
        assert (event.kind, event.outcome) == ("message.empty", "ignored")
        assert Message.objects.count() == 0
    assert tw.sent() == [] and chat_requests(llm) == []


@pytest.mark.parametrize(
    "params",
    [
        {"From": PERSON, "Body": "sin MessageSid"},
        {"MessageSid": "SM" + "1" * 32, "Body": "sin From"},
        {"MessageSid": "SM" + "2" * 32, "From": PERSON, "NumMedia": "muchos"},
    ],
    ids=["no-sid", "no-from", "bad-num-media"],
)
def test_a_malformed_post_gets_400_and_nothing_is_stored(
    company: Company,
    twilio: ChannelConnection,
    client_public: Client,
    params: dict[str, str],
) -> None:
    response = post_twilio(client_public, twilio, params)

    assert response.status_code == 400
    assert stored(company) == (0, 0)


# -- bursts ---------------------------------------------------------------------------------


def test_three_messages_in_a_row_get_one_answer_that_sees_all_three(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    llm: FakeOpenAI,
    client_public: Client,
    held_replies: list[int],
) -> None:
    words = ["Buenas", "necesito 3 cajas", "¿cuánto tarda el envío?"]
    for text in words:
        post_twilio(client_public, twilio, tw.incoming(text, from_=PERSON))

    with tenant_context(company):
        answers = [reply_generate(message_id=message_id) for message_id in held_replies]

    assert [a is None for a in answers] == [True, True, False]
    assert user_texts(chat_requests(llm)[-1]) == words
    assert [m.body for m in tw.sent(to=PERSON)] == ["Echo: ¿cuánto tarda el envío?"]


# -- the 24-hour window and templates ----------------------------------------------------------


def test_outside_the_24_hour_window_a_free_form_reply_is_not_sent(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    client_public: Client,
    held_replies: list[int],
) -> None:
    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))
    with tenant_context(company):
        Message.objects.filter(pk=held_replies[0]).update(
            created_at=timezone.now() - timedelta(hours=24, minutes=5)
        )

        reply = reply_generate(message_id=held_replies[0])

        assert reply is not None and reply.status == Message.Status.COMPLETED
        [part] = OutboundMessage.objects.filter(message=reply)
        assert part.status == "failed"
        assert part.error.startswith("outside WhatsApp's 24-hour window")
        assert part.attempts == 0
    assert tw.sent() == []


def test_within_the_window_a_late_reply_is_still_sent(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    client_public: Client,
    held_replies: list[int],
) -> None:
    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))
    with tenant_context(company):
        Message.objects.filter(pk=held_replies[0]).update(
            created_at=timezone.now() - timedelta(hours=23, minutes=50)
        )
        reply_generate(message_id=held_replies[0])
    assert len(tw.sent(to=PERSON)) == 1


def _conversation_with_templates(
    company: Company, twilio: ChannelConnection, client_public: Client, templates: list[dict]
) -> Conversation:
    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))
    with tenant_context(company):
        ChannelConnection.objects.filter(pk=twilio.pk).update(templates=templates)
        Message.objects.filter(role=Message.Role.VISITOR).update(
            created_at=timezone.now() - timedelta(days=3)
        )
        return Conversation.objects.get()


def test_an_approved_template_is_sent_outside_the_window_with_its_content_sid(
    company: Company, twilio: ChannelConnection, tw: FakeTwilio, client_public: Client
) -> None:
    template = {
        "name": "seguimiento",
        "language": "es",
        "body": "Hola {{1}}, ¿seguimos con tu pedido?",
        "content_sid": CONTENT_SID,
    }
    conversation = _conversation_with_templates(company, twilio, client_public, [template])
    tw.reset()

    with tenant_context(company):
        outbound = template_send(
            conversation=conversation, template_name="seguimiento", variables={"1": "Camila"}
        )

        [sent] = tw.sent(to=PERSON)
        assert sent.content_sid == CONTENT_SID
        assert sent.content_variables == {"1": "Camila"}
        assert sent.body is None
        assert sent.from_ == TWILIO_SENDER
        assert sent.status_callback == webhook_url(twilio, status=True)
        outbound.refresh_from_db()
        assert (outbound.status, outbound.template) == ("sent", "seguimiento")
        assert outbound.provider_message_id == sent.sid
        assert outbound.message.role == Message.Role.SYSTEM
        assert outbound.message.text == template["body"]


def test_a_template_without_a_content_sid_is_not_sent(
    company: Company, twilio: ChannelConnection, tw: FakeTwilio, client_public: Client
) -> None:
    template = {"name": "seguimiento", "language": "es", "body": "Hola, ¿seguimos?"}
    conversation = _conversation_with_templates(company, twilio, client_public, [template])
    tw.reset()

    with tenant_context(company):
        outbound = template_send(conversation=conversation, template_name="seguimiento")

        assert outbound.status == "failed"
        assert "content_sid" in outbound.error
        with pytest.raises(SendError):
            template_send(conversation=conversation, template_name="no-aprobada")
    assert tw.sent() == []


# -- status callbacks -----------------------------------------------------------------------


@pytest.fixture
def answered(
    company: Company, twilio: ChannelConnection, tw: FakeTwilio, client_public: Client
) -> str:
    """The SID of the answer sent to the recorded inbound message."""
    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))
    [sent] = tw.sent(to=PERSON)
    return sent.sid


def status_post(sid: str, status: str, error_code: str | None = None) -> dict[str, str]:
    params = fixture("twilio_status_read.json")
    params |= {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status}
    if error_code:
        params["ErrorCode"] = error_code
    return params


def part_of(company: Company, sid: str) -> OutboundMessage:
    with tenant_context(company):
        return OutboundMessage.objects.get(provider_message_id=sid)


def test_status_callbacks_move_a_part_forward_only(
    company: Company, twilio: ChannelConnection, client_public: Client, answered: str
) -> None:
    for status, expected in [
        ("sent", "sent"),
        ("read", "read"),
        ("delivered", "read"),  # late: a status never goes back
        ("sent", "read"),
    ]:
        response = post_twilio(client_public, twilio, status_post(answered, status), status=True)
        assert response.status_code == 200
        assert part_of(company, answered).status == expected
    with tenant_context(company):
        kinds = set(InboundEvent.objects.filter(outcome="status").values_list("kind", flat=True))
        assert kinds == {"status.sent", "status.read", "status.delivered"}


def test_a_failed_status_is_recorded_with_its_error(
    company: Company, twilio: ChannelConnection, client_public: Client, answered: str
) -> None:
    post_twilio(client_public, twilio, status_post(answered, "delivered"), status=True)
    post_twilio(client_public, twilio, status_post(answered, "undelivered", "63016"), status=True)

    part = part_of(company, answered)
    assert (part.status, part.error) == ("failed", "Twilio error 63016")


def test_the_fakes_own_status_callback_is_accepted(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    client_public: Client,
    answered: str,
) -> None:
    params = tw.status_callback(answered, "delivered")

    assert post_twilio(client_public, twilio, params, status=True).status_code == 200
    assert part_of(company, answered).status == "delivered"


def test_a_forged_status_callback_is_refused(
    company: Company, twilio: ChannelConnection, client_public: Client, answered: str
) -> None:
    params = status_post(answered, "read")
    path = f"/hooks/twilio/{twilio.webhook_id}/status"
    # Signed for the message webhook, posted to the status URL.
    wrong = twilio_server.signature(
        f"http://localhost/hooks/twilio/{twilio.webhook_id}", params, twilio.auth_token
    )

    response = post_twilio(client_public, twilio, params, signature=wrong, path=path)

    assert response.status_code == 403
    assert part_of(company, answered).status == "sent"


def test_a_status_of_an_unknown_message_is_recorded_and_changes_nothing(
    company: Company, twilio: ChannelConnection, client_public: Client, answered: str
) -> None:
    other = "SM" + "0" * 32

    assert (
        post_twilio(client_public, twilio, status_post(other, "read"), status=True).status_code
        == 200
    )
    assert part_of(company, answered).status == "sent"
    with tenant_context(company):
        assert InboundEvent.objects.filter(provider_id=f"status:{other}:read").exists()


# -- blocked and failing sends ------------------------------------------------------------------


@pytest.mark.parametrize("code", ["21610", "21211"])
def test_an_opted_out_or_invalid_number_stops_at_once_and_marks_the_contact_unreachable(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    client_public: Client,
    code: str,
) -> None:
    tw.queue_fault(code)  # type: ignore[arg-type]

    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))

    creates = [r for r in tw.requests if r.method == "POST" and r.path.endswith("/Messages.json")]
    assert len(creates) == 1  # no retries
    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert part.status == "failed"
        assert part.error.startswith(f"Twilio error {code}")
        assert Contact.objects.get().unreachable is True
        from apps.analytics.models import Event

        [event] = Event.objects.filter(kind="delivery.failed")
        assert event.data["unreachable"] is True
        assert event.channel == "whatsapp"
        assert ChannelConnection.objects.get(pk=twilio.pk).last_error.startswith("Twilio error")


def test_outside_the_window_at_twilio_63016_fails_without_marking_unreachable(
    company: Company, twilio: ChannelConnection, tw: FakeTwilio, client_public: Client
) -> None:
    tw.queue_fault("63016")

    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))

    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert (part.status, part.attempts) == ("failed", 1)
        assert "63016" in part.error
        assert Contact.objects.get().unreachable is False


@pytest.mark.parametrize(("fault", "times"), [("429", 1), ("500", 2)])
def test_a_passing_error_is_retried_and_the_answer_delivered(
    company: Company,
    twilio: ChannelConnection,
    tw: FakeTwilio,
    client_public: Client,
    eager_retries: None,
    fault: str,
    times: int,
) -> None:
    tw.queue_fault(fault, times=times)  # type: ignore[arg-type]

    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))

    [sent] = tw.sent(to=PERSON)
    with tenant_context(company):
        part = OutboundMessage.objects.get()
        assert (part.status, part.attempts, part.provider_message_id) == (
            "sent",
            times + 1,
            sent.sid,
        )
        assert part.error == ""
        assert Contact.objects.get().unreachable is False
