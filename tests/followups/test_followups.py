"""Follow-ups (apps.followups): scheduled by the flows' inactivity rules and `follow_up`
actions, sent on the conversation's channel (web: stored for the next visit and emailed;
Telegram; WhatsApp in and outside the 24-hour window), never during quiet hours, never after
the visitor wrote or opted out, never twice (even when a worker dies mid-send), visible on the
lead's timeline and cancellable by the team; the dispatcher fans out per company."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.accounts.models import Role
from apps.channels.models import ChannelConnection
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import conversation_messages_visible, message_receive
from apps.flows.services import flow_version_save
from apps.followups import services
from apps.followups.models import FollowUp, FollowUpSettings
from apps.followups.services import (
    followup_schedule,
    followup_send,
    followups_due,
    inactivity_scan,
    quiet_until,
    wants_no_more_messages,
)
from apps.followups.tasks import followups_dispatch
from apps.leads.models import LeadEvent
from apps.leads.services import lead_for_conversation
from apps.tenants.models import Company
from tests.channels.conftest import connect_meta, connect_telegram, post_meta, post_telegram
from tests.conftest import logged_in, member, owner
from tests.fakes.meta_server import FakeMeta
from tests.fakes.telegram_server import FakeTelegram

SESSION = "followup-visitor"
ZONE = ZoneInfo("America/Bogota")
INACTIVE = """\
flows:
  seguimiento:
    - trigger: "7_dias_sin_actividad"
      message: "¿Sigues interesado en nuestros servicios?"
      actions: ["re_engagement", "descuento_especial"]
discount:
  code: VUELVE10
  text: "Usa {code} este mes"
"""


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    settings.OPENAI_API_KEY = ""


@pytest.fixture
def company(alpha: Company) -> Iterator[Company]:
    with tenant_context(alpha):
        # Quiet hours off unless a test sets them: the tests run at any time of day.
        FollowUpSettings.objects.update_or_create(
            pk=1, defaults={"quiet_start": time(0, 0), "quiet_end": time(0, 0),
                            "time_zone": "America/Bogota"},
        )  # fmt: skip
        yield alpha


def writes(text: str, session: str = SESSION, **kwargs: Any) -> Message:
    return message_receive(channel="web", session_id=session, text=text, **kwargs).message


def conversation(session: str = SESSION) -> Conversation:
    return Conversation.objects.select_related("contact").get(session_id=session)


def silent_for(days: float, session: str = SESSION) -> Conversation:
    Conversation.objects.filter(session_id=session).update(
        last_message_at=timezone.now() - timedelta(days=days)
    )
    return conversation(session)


def schedule(chat: Conversation, text: str = "¿Seguimos?", **kwargs: Any) -> FollowUp:
    followup = followup_schedule(conversation=chat, text=text, due_at=timezone.now(),
                                 key=kwargs.pop("key", f"test:{chat.pk}:{text}"),
                                 source="flow", **kwargs)  # fmt: skip
    assert followup is not None
    return followup


def timeline(session: str = SESSION) -> list[str]:
    lead = lead_for_conversation(conversation(session).pk)
    assert lead is not None
    return list(
        LeadEvent.objects.filter(lead=lead, kind="followup")
        .order_by("id")
        .values_list("new", flat=True)
    )


# --- Scheduling by inactivity ---------------------------------------------------------------


def test_seven_days_of_silence_schedule_one_follow_up_then_it_is_sent_with_the_actions(
    company: Company,
) -> None:
    flow_version_save(source=INACTIVE, author=None)
    writes("Hola, quiero un seguro de hogar")
    before = conversation().last_message_at
    assert inactivity_scan() == 0  # not silent long enough
    chat = silent_for(7.1)

    assert inactivity_scan() == 1
    assert inactivity_scan() == 0  # once per quiet period
    [followup] = FollowUp.objects.all()
    assert (followup.source, followup.rule_key, followup.status) == (
        "inactivity", "seguimiento:0", "scheduled",
    )  # fmt: skip

    assert followups_due() == [followup.pk]
    assert followup_send(followup_id=followup.pk) == "sent"

    followup.refresh_from_db()
    assert followup.status == "sent" and followup.sent_at is not None
    shown = [(m.role, m.text) for m in conversation_messages_visible(chat)]
    assert shown[-2:] == [
        ("assistant", "¿Sigues interesado en nuestros servicios?"),
        ("assistant", "Usa VUELVE10 este mes"),  # the rule's discount action
    ]
    lead = lead_for_conversation(chat.pk)
    assert lead is not None and "re_engagement" in lead.tags
    # A follow-up is not activity: the silence goes on, and no new follow-up piles up now.
    assert conversation().last_message_at == chat.last_message_at != before
    assert inactivity_scan() == 0
    assert timeline() == ["scheduled", "sent"]


def test_after_the_visitor_answers_a_new_silence_gets_a_new_follow_up(company: Company) -> None:
    flow_version_save(source=INACTIVE, author=None)
    writes("Hola")
    silent_for(8)
    inactivity_scan()
    followup_send(followup_id=FollowUp.objects.get().pk)
    writes("Sí, sigo interesado")
    silent_for(7.5)

    assert inactivity_scan() == 1
    assert FollowUp.objects.filter(status="scheduled").count() == 1


def test_no_more_than_the_settings_allow_in_a_row_without_an_answer(company: Company) -> None:
    FollowUpSettings.objects.filter(pk=1).update(max_unanswered=1)
    flow_version_save(source=INACTIVE, author=None)
    writes("Hola")
    silent_for(8)
    inactivity_scan()
    followup_send(followup_id=FollowUp.objects.get().pk)
    # Another period of silence, without an answer: the limit is reached.
    Conversation.objects.filter(pk=conversation().pk).update(
        last_message_at=timezone.now() - timedelta(days=7, hours=1)
    )
    FollowUp.objects.update(sent_at=timezone.now())
    assert inactivity_scan() == 0


def test_old_silences_and_conversations_a_person_has_are_not_followed_up(company: Company) -> None:
    flow_version_save(source=INACTIVE, author=None)
    writes("Hola", session="ancient")
    writes("Hola", session="taken")
    silent_for(30, "ancient")  # older than the look-back: a new rule does not spam history
    silent_for(8, "taken")
    Conversation.objects.filter(session_id="taken").update(mode=Conversation.Mode.HUMAN)
    assert inactivity_scan() == 0


# --- Quiet hours, replies, opt-out ------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 12, 7, 22, 30), datetime(2026, 12, 8, 8, 0)),
        (datetime(2026, 12, 8, 6, 15), datetime(2026, 12, 8, 8, 0)),
        (datetime(2026, 12, 8, 12, 0), None),
        (datetime(2026, 12, 8, 21, 0), datetime(2026, 12, 9, 8, 0)),
        (datetime(2026, 12, 8, 8, 0), None),
    ],
)
def test_quiet_hours_span_midnight_in_the_companys_time_zone(
    company: Company, local: datetime, expected: datetime | None
) -> None:
    row = FollowUpSettings(
        quiet_start=time(21, 0), quiet_end=time(8, 0), time_zone="America/Bogota"
    )
    until = quiet_until(local.replace(tzinfo=ZONE), row)
    assert until == (expected.replace(tzinfo=ZONE) if expected else None)


def test_a_follow_up_due_in_quiet_hours_waits_for_their_end(company: Company) -> None:
    FollowUpSettings.objects.filter(pk=1).update(quiet_start=time(21, 0), quiet_end=time(8, 0))
    writes("Hola")
    followup = schedule(conversation())
    night = datetime(2026, 12, 7, 23, 0, tzinfo=ZONE)
    FollowUp.objects.filter(pk=followup.pk).update(due_at=night - timedelta(minutes=1))

    assert followup_send(followup_id=followup.pk, now=night) == "scheduled"

    followup.refresh_from_db()
    assert followup.due_at == datetime(2026, 12, 8, 8, 0, tzinfo=ZONE)
    assert not Message.objects.filter(intent="followup").exists()
    morning = datetime(2026, 12, 8, 8, 1, tzinfo=ZONE)
    assert followup_send(followup_id=followup.pk, now=morning) == "sent"


def test_the_visitor_writing_first_cancels_what_was_scheduled(company: Company) -> None:
    writes("Hola")
    followup = schedule(conversation())
    writes("Una pregunta más")
    followup.refresh_from_db()
    assert (followup.status, followup.reason) == ("cancelled", "the visitor wrote first")
    assert followup_send(followup_id=followup.pk) == "cancelled"
    assert timeline() == ["scheduled", "cancelled"]


@pytest.mark.parametrize(
    "text", ["STOP", "stop", "Baja", "BAJA.", "no más mensajes", "No mas mensajes por favor",
             "dejen de escribirme", "unsubscribe", "please don't message me again"],
)  # fmt: skip
def test_opt_out_words_are_recognised(text: str) -> None:
    assert wants_no_more_messages(text) is True


@pytest.mark.parametrize(
    "text", ["no puedo parar de pensar en el seguro", "stop sign insurance?", "la baja de precio",
             "¿cuándo es la próxima baja de tasas?", "quiero más mensajes de ofertas"],
)  # fmt: skip
def test_ordinary_messages_are_not_opt_outs(text: str) -> None:
    assert wants_no_more_messages(text) is False


def test_stop_opts_the_contact_out_cancels_and_confirms(company: Company) -> None:
    flow_version_save(source=INACTIVE, author=None)
    writes("Hola")
    followup = schedule(conversation())

    writes("BAJA")

    chat = conversation()
    assert chat.contact.opted_out_at is not None
    followup.refresh_from_db()
    assert (followup.status, followup.reason) == ("cancelled", "the visitor opted out")
    last = Message.objects.filter(role="assistant").order_by("id").last()
    assert last is not None and last.text.startswith("Listo: no te enviaremos más mensajes")
    lead = lead_for_conversation(chat.pk)
    assert LeadEvent.objects.filter(lead=lead, kind="opted_out").count() == 1
    silent_for(8)
    assert inactivity_scan() == 0
    assert followup_schedule(conversation=chat, text="x", due_at=timezone.now(), key="k",
                             source="flow") is None  # fmt: skip


# --- At most once --------------------------------------------------------------------------


def test_a_follow_up_is_sent_once_even_when_sent_twice(company: Company) -> None:
    writes("Hola")
    followup = schedule(conversation())
    assert followup_send(followup_id=followup.pk) == "sent"
    assert followup_send(followup_id=followup.pk) == "sent"
    assert Message.objects.filter(intent="followup").count() == 1


def test_a_worker_dying_mid_send_leaves_it_unknown_never_sent_again(company: Company) -> None:
    writes("Hola")
    followup = schedule(conversation())
    # The worker claimed it (committed `sending`) and died before settling it.
    FollowUp.objects.filter(pk=followup.pk).update(
        status="sending", updated_at=timezone.now() - timedelta(minutes=11)
    )

    assert followups_due() == []
    followup.refresh_from_db()
    assert followup.status == "unknown"
    assert "not sent again" in followup.reason
    assert followup_send(followup_id=followup.pk) == "unknown"
    assert not Message.objects.filter(intent="followup").exists()
    assert timeline() == ["scheduled", "unknown"]


def test_a_recent_sending_follow_up_is_left_to_its_worker(company: Company) -> None:
    writes("Hola")
    followup = schedule(conversation())
    FollowUp.objects.filter(pk=followup.pk).update(status="sending")
    assert followups_due() == []
    assert FollowUp.objects.get(pk=followup.pk).status == "sending"


# --- Channels ----------------------------------------------------------------------------------


def test_a_web_follow_up_is_shown_at_the_next_visit_and_emailed_once(company: Company) -> None:
    writes("Hola, soy Ana, mi correo es ana@cliente.example")
    followup = schedule(conversation(), text="¿Te ayudo con la cotización?")
    mail.outbox.clear()

    assert followup_send(followup_id=followup.pk) == "sent"
    followup_send(followup_id=followup.pk)

    followup.refresh_from_db()
    assert followup.reason == "shown at the visitor's next visit; emailed to ana@cliente.example"
    [email] = mail.outbox
    assert email.to == ["ana@cliente.example"]
    assert email.body.startswith("¿Te ayudo con la cotización?")
    visible = conversation_messages_visible(conversation())
    assert visible[-1].text == "¿Te ayudo con la cotización?"


def test_no_email_when_the_settings_say_so_or_no_email_is_known(company: Company) -> None:
    FollowUpSettings.objects.filter(pk=1).update(email=False)
    writes("Hola, mi correo es ana@cliente.example")
    mail.outbox.clear()
    followup_send(followup_id=schedule(conversation()).pk)
    writes("Hola", session="anon")
    FollowUpSettings.objects.filter(pk=1).update(email=True)
    followup_send(followup_id=schedule(conversation("anon")).pk)
    assert mail.outbox == []


@pytest.fixture
def simulators(settings: Settings) -> Iterator[tuple[FakeTelegram, FakeMeta]]:
    with FakeTelegram() as tg, FakeMeta() as wa:
        tg.require_https_webhook = False
        settings.TELEGRAM_API_BASE_URL = tg.base_url
        settings.WHATSAPP_CLOUD_API_BASE_URL = wa.base_url
        settings.PUBLIC_BASE_URL = "http://localhost"
        settings.CHANNEL_BURST_SECONDS = 0
        yield tg, wa


def test_a_telegram_follow_up_is_sent_once_through_the_bot(
    company: Company, simulators: tuple[FakeTelegram, FakeMeta], client_public: Client
) -> None:
    tg, _wa = simulators
    channel = connect_telegram(company)
    post_telegram(client_public, channel, tg.update_text("Hola", chat_id=5550001))
    connection.set_tenant(company)  # the request left the public schema active
    chat = Conversation.objects.get(channel="telegram")
    before = len(tg.sent(chat_id=5550001))

    followup = schedule(chat, text="¿Sigues interesado?")
    followup_send(followup_id=followup.pk)
    followup_send(followup_id=followup.pk)

    assert [s.message["text"] for s in tg.sent(chat_id=5550001)][before:] == ["¿Sigues interesado?"]


def test_whatsapp_outside_the_window_sends_the_approved_template_or_skips(
    company: Company, simulators: tuple[FakeTelegram, FakeMeta], client_public: Client
) -> None:
    _tg, wa = simulators
    channel = connect_meta(company)
    post_meta(client_public, channel, wa.message_text("Hola, soy Mateo", from_="5215511112222"))
    connection.set_tenant(company)
    chat = Conversation.objects.get(channel="whatsapp")
    Message.objects.filter(role="visitor").update(created_at=timezone.now() - timedelta(days=2))

    skipped = schedule(chat, text="¿Seguimos?", key="wa-1")
    assert followup_send(followup_id=skipped.pk) == "skipped"
    assert FollowUp.objects.get(pk=skipped.pk).reason == (
        "outside WhatsApp's 24-hour window and no approved template"
    )

    ChannelConnection.objects.filter(pk=channel.pk).update(
        templates=[{"name": "seguimiento", "language": "es_MX", "body": "Hola {{1}}, ¿seguimos?"}]
    )
    FollowUpSettings.objects.filter(pk=1).update(whatsapp_template="seguimiento")
    Contact.objects.filter(pk=chat.contact_id).update(name="Mateo Ruiz")
    sent = schedule(chat, text="¿Seguimos?", key="wa-2")
    assert followup_send(followup_id=sent.pk) == "sent"
    [template] = [m for m in wa.sent(to="5215511112222") if m.type == "template"]
    assert template.template["name"] == "seguimiento"
    assert template.template["components"][0]["parameters"] == [{"type": "text", "text": "Mateo"}]


def test_whatsapp_inside_the_window_sends_the_text(
    company: Company, simulators: tuple[FakeTelegram, FakeMeta], client_public: Client
) -> None:
    _tg, wa = simulators
    channel = connect_meta(company)
    post_meta(client_public, channel, wa.message_text("Hola", from_="5215533334444"))
    connection.set_tenant(company)
    chat = Conversation.objects.get(channel="whatsapp")
    followup_send(followup_id=schedule(chat, text="¿Te llamo hoy?").pk)
    assert [m.text for m in wa.sent(to="5215533334444")][-1] == "¿Te llamo hoy?"


# --- The team -------------------------------------------------------------------------------


def test_the_lead_page_lists_follow_ups_and_an_agent_cancels_one(company: Company) -> None:
    writes("Hola, soy Ana")
    followup = schedule(conversation(), text="¿Seguimos con la cotización?")
    lead = lead_for_conversation(conversation().pk)
    assert lead is not None
    boss = owner(company)
    client = logged_in(company, boss)

    page = client.get(f"/dashboard/leads/{lead.pk}/").content.decode()
    assert f'data-followup-id="{followup.pk}" data-status="scheduled"' in page
    assert "¿Seguimos con la cotización?" in page

    response = client.post(f"/dashboard/followups/{followup.pk}/cancel/")
    assert response.status_code == 302
    followup.refresh_from_db()
    assert (followup.status, followup.cancelled_by_id) == ("cancelled", boss.pk)
    assert followup_send(followup_id=followup.pk) == "cancelled"
    assert timeline() == ["scheduled", "cancelled"]


def test_viewers_cannot_cancel_and_other_companies_cannot_see(
    company: Company, beta: Company
) -> None:
    writes("Hola")
    followup = schedule(conversation())
    viewer = member(company, Role.VIEWER)
    assert (
        logged_in(company, viewer).post(f"/dashboard/followups/{followup.pk}/cancel/").status_code
        == 403
    )
    with tenant_context(beta):
        response = logged_in(beta, owner(beta)).post(f"/dashboard/followups/{followup.pk}/cancel/")
    assert response.status_code == 404
    assert FollowUp.objects.get(pk=followup.pk).status == "scheduled"


def test_the_dispatcher_runs_each_company_in_its_own_schema(
    alpha: Company, beta: Company, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    settings.FOLLOWUP_JITTER_SECONDS = 0
    seen: list[str] = []
    from django.db import connection

    from apps.followups import tasks

    monkeypatch.setattr(tasks, "inactivity_scan", lambda: seen.append(connection.schema_name))
    with tenant_context(alpha):
        writes("Hola", session="alpha-visitor")
        schedule(conversation("alpha-visitor"))
    with tenant_context(beta):
        writes("Hola", session="beta-visitor")

    assert followups_dispatch() >= 2
    assert {alpha.schema_name, beta.schema_name} <= set(seen)
    with tenant_context(alpha):
        assert Message.objects.filter(intent="followup").count() == 1
    with tenant_context(beta):
        assert not Message.objects.filter(intent="followup").exists()


def test_a_full_batch_of_followed_up_conversations_does_not_hide_the_next_ones(
    company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "BATCH", 2)
    flow_version_save(source=INACTIVE, author=None)
    for n in range(5):
        writes("Hola", session=f"s{n}")
        silent_for(7.5 + n / 10, session=f"s{n}")

    assert [inactivity_scan() for _ in range(4)] == [2, 2, 1, 0]
    assert FollowUp.objects.count() == 5
