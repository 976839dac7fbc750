"""The booking step: free weekly slots, the offer, the visitor's pick in Spanish and English,
the booking on the lead, and the calendar invitations, through the real reply pipeline with
the offline responder (no model), in alpha's schema (beta for isolation).

The clock is fixed (`timezone.now`) at Tuesday 1 December 2026, 09:00 in Bogotá, so the slots
and the replies are exact.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context
from icalendar import Calendar

from apps.assistants.models import Provider
from apps.assistants.services import assistant_profile_get
from apps.channels.models import WidgetSettings
from apps.conversations.models import Channel, Conversation, Message
from apps.conversations.services import message_receive, reply_generate
from apps.leads import booking
from apps.leads.booking import (
    booking_answer,
    booking_invite_pending,
    booking_pick_filter,
    booking_pick_read,
    booking_slots_next,
)
from apps.leads.models import Lead, LeadEvent, LeadSettings, Stage
from apps.leads.services import lead_for_conversation, lead_settings_get
from apps.tenants.models import Company
from tests.conftest import owner_email

BOGOTA = zoneinfo.ZoneInfo("America/Bogota")
MEXICO = zoneinfo.ZoneInfo("America/Mexico_City")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=BOGOTA)  # a Tuesday
WEEKLY = [
    {"weekday": 0, "time": "10:00"},  # Monday
    {"weekday": 3, "time": "10:00"},  # Thursday
    {"weekday": 3, "time": "15:00"},
    {"weekday": 4, "time": "09:30"},  # Friday
]
THU_10 = datetime(2026, 12, 3, 10, 0, tzinfo=BOGOTA)
THU_15 = datetime(2026, 12, 3, 15, 0, tzinfo=BOGOTA)
FRI_0930 = datetime(2026, 12, 4, 9, 30, tzinfo=BOGOTA)
MON_10 = datetime(2026, 12, 7, 10, 0, tzinfo=BOGOTA)

OFFER_ES = (
    "¡Perfecto! Estos son los próximos horarios disponibles para la demo (hora de Bogotá):\n"
    "1. jueves 3 de diciembre, 10:00\n"
    "2. jueves 3 de diciembre, 15:00\n"
    "3. viernes 4 de diciembre, 9:30\n"
    "¿Cuál te queda mejor? Respóndeme con el número."
)
OFFER_EN = (
    "Great! These are the next available times for the demo (Bogotá time):\n"
    "1. Thursday, December 3, 10:00 AM\n"
    "2. Thursday, December 3, 3:00 PM\n"
    "3. Friday, December 4, 9:30 AM\n"
    "Which one works best for you? Just reply with the number."
)


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NOW.astimezone(UTC))


def company_setup(
    company: Company,
    *,
    slots: list[dict[str, Any]] | None = None,
    link: str = "",
    time_zone: str = "America/Bogota",
    notice_hours: int = 2,
) -> LeadSettings:
    """In `company`'s schema (the caller's tenant_context): the offline responder with the
    software template, the time zone and the booking settings."""
    profile = assistant_profile_get()
    profile.provider = Provider.OFFLINE
    profile.industry_template = "software"
    profile.languages = ["es", "en"]
    profile.save()
    WidgetSettings.objects.update_or_create(pk=1, defaults={"time_zone": time_zone})
    settings = lead_settings_get()
    settings.booking_slots = WEEKLY if slots is None else slots
    settings.booking_link = link
    settings.booking_notice_hours = notice_hours
    settings.booking_minutes = 30
    settings.save()
    return settings


@pytest.fixture
def company(alpha: Company) -> Iterator[Company]:
    with tenant_context(alpha):
        company_setup(alpha)
        yield alpha


def say(text: str, session: str = "visitor-1") -> Message:
    """The visitor writes `text`; the reply pipeline answers (on-commit work run at once)."""
    received = message_receive(channel=Channel.API, session_id=session, text=text, generate=False)
    reply = reply_generate(message_id=received.message.pk)
    assert reply is not None
    reply.refresh_from_db()
    return reply


def lead_of(reply: Message) -> Lead:
    lead = lead_for_conversation(reply.conversation_id)
    assert lead is not None
    return lead


def invitations() -> list[tuple[Any, Calendar]]:
    """The emails sent with a calendar invitation, with the parsed invitation."""
    found = []
    for email in mail.outbox:
        for part in email.attachments:
            if getattr(part, "get_content_type", lambda: "")() == "text/calendar":
                found.append((email, Calendar.from_ical(part.get_payload(decode=True))))
    return found


def booked_events(lead: Lead) -> list[LeadEvent]:
    return list(LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.BOOKED).order_by("id"))


def other_lead_booked(at: datetime) -> Lead:
    return Lead.objects.create(name="Otro", booking_at=at, booking_kind="demo")


# -- slots ---------------------------------------------------------------------------------------


def test_the_next_slots_are_weekly_times_in_the_company_time_zone(company: Company) -> None:
    settings = lead_settings_get()

    slots = booking_slots_next(settings=settings, now=NOW)

    assert slots == [THU_10, THU_15, FRI_0930]
    assert [s.astimezone(UTC).hour for s in slots] == [15, 20, 14]  # Bogotá is UTC-5
    assert booking_slots_next(settings=settings, now=NOW, count=5)[3:] == [
        MON_10,
        datetime(2026, 12, 10, 10, 0, tzinfo=BOGOTA),
    ]


def test_mexico_city_slots_are_at_its_own_local_time(company: Company) -> None:
    settings = company_setup(company, time_zone="America/Mexico_City")

    slots = booking_slots_next(settings=settings, now=NOW)

    # 09:00 in Bogotá is 08:00 in Mexico City; Thursday 10:00 there is 16:00 UTC.
    assert slots == [
        datetime(2026, 12, 3, 10, 0, tzinfo=MEXICO),
        datetime(2026, 12, 3, 15, 0, tzinfo=MEXICO),
        datetime(2026, 12, 4, 9, 30, tzinfo=MEXICO),
    ]
    assert slots[0].astimezone(UTC) == datetime(2026, 12, 3, 16, 0, tzinfo=UTC)


def test_slots_within_the_notice_are_skipped_and_the_week_wraps(company: Company) -> None:
    settings = company_setup(company, notice_hours=2)
    friday_evening = datetime(2026, 12, 4, 8, 0, tzinfo=BOGOTA)  # 1.5 h before Friday 09:30

    slots = booking_slots_next(settings=settings, now=friday_evening)

    assert slots == [MON_10, datetime(2026, 12, 10, 10, 0, tzinfo=BOGOTA),
                     datetime(2026, 12, 10, 15, 0, tzinfo=BOGOTA)]  # fmt: skip
    settings.booking_notice_hours = 49  # Tuesday 09:00 + 49 h: Thursday 10:00, just in time
    assert booking_slots_next(settings=settings, now=NOW)[0] == THU_10
    settings.booking_notice_hours = 50
    assert booking_slots_next(settings=settings, now=NOW)[0] == THU_15


def test_a_slot_another_lead_booked_is_not_offered_nor_one_overlapping_it(
    company: Company,
) -> None:
    settings = lead_settings_get()
    other_lead_booked(THU_10)
    other_lead_booked(datetime(2026, 12, 3, 15, 15, tzinfo=BOGOTA))  # overlaps 15:00-15:30

    slots = booking_slots_next(settings=settings, now=NOW)

    assert slots == [FRI_0930, MON_10, datetime(2026, 12, 10, 10, 0, tzinfo=BOGOTA)]


def test_malformed_weekly_slots_are_ignored_and_none_gives_nothing(company: Company) -> None:
    settings = company_setup(
        company,
        slots=[
            {"weekday": 9, "time": "10:00"},
            {"time": "x"},
            "10:00",
            {"weekday": 4, "time": "09:30"},
        ],
    )
    assert booking_slots_next(settings=settings, now=NOW, count=1) == [FRI_0930]
    settings.booking_slots = []
    assert booking_slots_next(settings=settings, now=NOW) == []


def test_another_company_bookings_and_slots_do_not_affect_alpha(
    alpha: Company, beta: Company
) -> None:
    with tenant_context(beta):
        company_setup(beta, slots=[{"weekday": 1, "time": "11:00"}])
        other_lead_booked(THU_10)
        other_lead_booked(FRI_0930)
    with tenant_context(alpha):
        settings = company_setup(alpha)
        assert booking_slots_next(settings=settings, now=NOW) == [THU_10, THU_15, FRI_0930]
        other_lead_booked(THU_15)
    with tenant_context(beta):
        assert booking_slots_next(settings=lead_settings_get(), now=NOW) == [
            datetime(2026, 12, 1, 11, 0, tzinfo=BOGOTA),
            datetime(2026, 12, 8, 11, 0, tzinfo=BOGOTA),
            datetime(2026, 12, 15, 11, 0, tzinfo=BOGOTA),
        ]
        assert Lead.objects.filter(booking_at=THU_15).count() == 0


# -- reading the pick ----------------------------------------------------------------------------

OFFER = [THU_10, THU_15, FRI_0930]


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("1", "es", [THU_10]),
        ("la 2", "es", [THU_15]),
        ("opción 3", "es", [FRI_0930]),
        ("Me quedo con la segunda", "es", [THU_15]),
        ("el viernes", "es", [FRI_0930]),
        ("el jueves", "es", [THU_10, THU_15]),
        ("el jueves a las 3", "es", [THU_15]),
        ("a las 10", "es", [THU_10]),
        ("a las 3 de la tarde", "es", [THU_15]),
        ("jueves en la mañana", "es", [THU_10]),
        ("el 4 de diciembre", "es", [FRI_0930]),
        ("mañana", "es", []),  # Wednesday: nothing offered
        ("pasado mañana por la tarde", "es", [THU_15]),
        ("cualquiera", "es", [THU_10]),
        ("the second one", "en", [THU_15]),
        ("option 1 please", "en", [THU_10]),
        ("Thursday", "en", [THU_10, THU_15]),
        ("Thursday at 3pm", "en", [THU_15]),
        ("10am", "en", [THU_10]),
        ("9:30", "en", [FRI_0930]),
        ("Dec 4", "en", [FRI_0930]),
        ("12/4", "en", [FRI_0930]),
        ("the last one", "en", [FRI_0930]),
    ],
)
def test_a_pick_is_read_by_number_weekday_date_or_time(
    text: str, lang: str, expected: list[datetime]
) -> None:
    pick = booking_pick_read(text, today=date(2026, 12, 1), lang=lang, options=3)

    assert booking_pick_filter(OFFER, pick) == expected


@pytest.mark.parametrize(
    "text",
    [
        "¿Cuánto cuesta el plan para 5 usuarios?",
        "First of all, do you have any discount for startups?",
        "no tengo 2 opciones de presupuesto",
    ],
)
def test_words_about_something_else_pick_nothing(text: str) -> None:
    pick = booking_pick_read(text, today=date(2026, 12, 1), lang="es", options=3)

    assert not pick.anything


# -- the conversation, through the reply pipeline ------------------------------------------------


def test_spanish_offer_pick_by_number_asks_for_the_email_then_sends_the_invitations(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        offer = say("Hola, quiero agendar una demo")
    lead = lead_of(offer)
    assert offer.text == OFFER_ES
    assert (offer.status, offer.provider) == (Message.Status.COMPLETED, "offline")
    assert lead.booking_offer == [s.isoformat() for s in (THU_10, THU_15, FRI_0930)]
    assert lead.booking_at is None

    with django_capture_on_commit_callbacks(execute=True):
        confirmation = say("la 2")

    assert confirmation.text == (
        "Listo, agendé la demo para el jueves 3 de diciembre a las 15:00 (hora de Bogotá). "
        "¿A qué correo te envío la invitación de calendario?"
    )
    lead.refresh_from_db()
    assert (lead.booking_at, lead.booking_kind, lead.booking_offer, lead.stage) == (
        THU_15, "demo", [], Stage.MEETING_BOOKED
    )  # fmt: skip
    [event] = booked_events(lead)
    assert (event.new, event.conversation_id, event.data["kind"], event.data["language"]) == (
        THU_15.isoformat(), confirmation.conversation_id, "demo", "es"
    )  # fmt: skip
    assert LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.STAGE,
                                    new=Stage.MEETING_BOOKED).count() == 1  # fmt: skip
    assert lead.score_breakdown != {}
    assert invitations() == []  # no email known yet

    with django_capture_on_commit_callbacks(execute=True):
        thanks = say("ana@ejemplo.com")

    assert thanks.text == (
        "¡Gracias! Te envié la invitación de calendario para la demo a ana@ejemplo.com."
    )
    sent = invitations()
    assert [email.to for email, _ in sent] == [["ana@ejemplo.com"], [owner_email("alpha")]]
    visitor_email, ics = sent[0]
    assert visitor_email.subject == (
        "Invitación: Demo con Alpha, jueves 3 de diciembre a las 15:00 (hora de Bogotá)"
    )
    [vevent] = ics.walk("VEVENT")
    assert str(ics["METHOD"]) == "REQUEST"
    assert vevent.decoded("DTSTART") == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    assert vevent.decoded("DTEND") == datetime(2026, 12, 3, 20, 30, tzinfo=UTC)
    assert str(vevent["UID"]) == booking.booking_uid(lead, THU_15)
    assert str(vevent["ATTENDEE"]) == "mailto:ana@ejemplo.com"
    assert str(vevent["SUMMARY"]) == "Demo · Alpha"
    # A second chance to send changes nothing.
    assert booking_invite_pending(lead) is False
    assert len(invitations()) == 2


def test_english_pick_by_weekday_and_time_with_a_known_email_sends_the_invitations(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        offer = say("Hi, I'd like to book a demo. My email is john@example.com")
    assert offer.text == OFFER_EN

    with django_capture_on_commit_callbacks(execute=True):
        confirmation = say("Thursday at 3pm works")

    assert confirmation.text == (
        "Done, I booked the demo for Thursday, December 3 at 3:00 PM (Bogotá time). "
        "I sent the calendar invitation to john@example.com."
    )
    lead = lead_of(confirmation)
    assert (lead.booking_at, lead.stage) == (THU_15, Stage.MEETING_BOOKED)
    (visitor_email, visitor_ics), (team_email, team_ics) = invitations()
    assert visitor_email.to == ["john@example.com"]
    assert visitor_email.subject == (
        "Invitation: Demo with Alpha, Thursday, December 3 at 3:00 PM (Bogotá time)"
    )
    assert "Your booking with Alpha is confirmed: the demo." in visitor_email.body
    [html] = [body for body, kind in visitor_email.alternatives if kind == "text/html"]
    assert "Your booking with Alpha is confirmed: the demo." in html
    part = visitor_email.attachments[0]
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == "REQUEST"
    # The team side: the company's language (Spanish), the conversation's link.
    assert team_email.to == [owner_email("alpha")]
    assert team_email.subject == (
        "Agendado: Demo con john@example.com, jueves 3 de diciembre a las 15:00 (hora de Bogotá)"
    )
    [team_event] = team_ics.walk("VEVENT")
    [visitor_event] = visitor_ics.walk("VEVENT")
    url = f"/dashboard/inbox/conversations/{confirmation.conversation_id}/"
    assert url in str(team_event["DESCRIPTION"])
    assert url not in str(visitor_event["DESCRIPTION"])
    assert str(team_event["UID"]) == str(visitor_event["UID"])
    assert team_event.decoded("DTSTART") == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    assert str(team_event["ATTENDEE"]) == "mailto:john@example.com"


def test_the_lead_owner_or_the_notify_list_gets_the_team_invitation(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    settings = lead_settings_get()
    settings.notify_emails = ["ventas@alpha.example.com"]
    settings.save()
    with django_capture_on_commit_callbacks(execute=True):
        say("Quiero agendar una demo, mi correo es eva@ejemplo.com")
        say("el viernes")

    assert [email.to for email, _ in invitations()] == [
        ["eva@ejemplo.com"],
        ["ventas@alpha.example.com"],
    ]


def test_a_yes_to_the_template_next_step_offers_the_slots(company: Company) -> None:
    received = message_receive(channel=Channel.API, session_id="s", text="Hola", generate=False)
    Message.objects.create(
        conversation=received.conversation,
        channel=Channel.API,
        role=Message.Role.ASSISTANT,
        status=Message.Status.COMPLETED,
        text="Genial. ¿Te gustaría agendar una demo personalizada esta semana?",
        reply_to=received.message,
    )

    reply = say("¡Sí, dale!", session="s")

    assert reply.text == OFFER_ES


def test_a_yes_without_an_offer_of_the_next_step_is_not_a_booking(company: Company) -> None:
    reply = say("sí")

    assert reply.text != OFFER_ES
    assert lead_of(reply).booking_offer == []


def test_a_spanish_weekday_and_time_pick_books_that_slot(company: Company) -> None:
    say("¿Podemos agendar una reunión?")

    reply = say("el jueves a las 10")

    assert reply.text.startswith(
        "Listo, agendé la demo para el jueves 3 de diciembre a las 10:00 (hora de Bogotá)."
    )
    assert lead_of(reply).booking_at == THU_10


def test_a_time_not_offered_but_free_is_booked(company: Company) -> None:
    say("quiero agendar una demo")

    reply = say("¿Y el lunes a las 10?")

    assert reply.text.startswith("Listo, agendé la demo para el lunes 7 de diciembre a las 10:00")
    assert lead_of(reply).booking_at == MON_10


def test_an_unclear_answer_is_asked_again_twice_then_the_assistant_answers(
    company: Company,
) -> None:
    say("quiero agendar una demo")

    first = say("ok")
    second = say("ok, ese día")
    third = say("ok")

    assert first.text.startswith(
        "Perdona, no me quedó claro qué horario prefieres. Estas son las opciones para la demo"
    )
    assert "1. jueves 3 de diciembre, 10:00" in first.text
    assert second.text == first.text
    assert "Perdona" not in third.text
    lead = lead_of(third)
    assert (lead.booking_offer, lead.booking_at) == ([], None)
    assert Conversation.objects.get(pk=third.conversation_id).context["booking_reoffers"] == 0


def test_a_message_about_something_else_leaves_the_offer_open(company: Company) -> None:
    say("quiero agendar una demo")

    reply = say("¿Tienen integración con WhatsApp?")

    assert "Perdona" not in reply.text and "agendé" not in reply.text
    lead = lead_of(reply)
    assert len(lead.booking_offer) == 3
    assert say("la 1").text.startswith("Listo, agendé la demo para el jueves 3 de diciembre")


def test_none_of_these_offers_later_slots(company: Company) -> None:
    say("quiero agendar una demo")

    reply = say("ninguno me sirve")

    assert reply.text.startswith(
        "Sin problema. Estos son otros horarios disponibles para la demo (hora de Bogotá):\n"
        "1. lunes 7 de diciembre, 10:00\n"
    )


def test_a_slot_taken_meanwhile_is_not_double_booked(company: Company) -> None:
    say("quiero agendar una demo")
    other = other_lead_booked(THU_10)

    reply = say("1")

    assert reply.text.startswith("Lo siento, ese horario se acaba de ocupar.")
    assert "1. jueves 3 de diciembre, 15:00" in reply.text
    assert lead_of(reply).booking_at is None
    assert list(Lead.objects.filter(booking_at=THU_10)) == [other]


def test_with_a_booking_link_and_no_slots_the_link_is_sent(company: Company) -> None:
    company_setup(company, slots=[], link="https://cal.example.com/alpha/demo")

    reply = say("Hi, can we schedule a call?")

    assert reply.text == (
        "Great! You can book the demo at the time that suits you best here: "
        "https://cal.example.com/alpha/demo"
    )
    lead = lead_of(reply)
    assert (lead.booking_link, lead.booking_at, lead.booking_offer) == (
        "https://cal.example.com/alpha/demo", None, []
    )  # fmt: skip
    assert lead.stage != Stage.MEETING_BOOKED
    [event] = booked_events(lead)
    assert event.data["link"] == "https://cal.example.com/alpha/demo"


def test_nothing_is_offered_to_a_lead_already_booked(company: Company) -> None:
    say("quiero agendar una demo")
    say("3")
    events = len(booked_events(lead_of(say("gracias"))))

    reply = say("quiero agendar una demo")

    assert reply.text == (
        "Ya tienes una reserva: la demo el viernes 4 de diciembre a las 9:30 (hora de Bogotá). "
        "¿Te ayudo con algo más?"
    )
    lead = lead_of(reply)
    assert (lead.booking_offer, lead.booking_at) == ([], FRI_0930)
    assert len(booked_events(lead)) == events == 1


def test_a_company_without_slots_or_link_leaves_it_to_the_assistant(company: Company) -> None:
    company_setup(company, slots=[], link="")
    received = message_receive(
        channel=Channel.API, session_id="s", text="quiero agendar una demo", generate=False
    )
    reply_generate(message_id=received.message.pk)  # creates the lead

    assert booking_answer(received.message) is None
    lead = lead_for_conversation(received.conversation.pk)
    assert lead is not None
    assert (lead.booking_offer, lead.booking_link) == ([], "")
    assert booked_events(lead) == []


def test_a_booking_in_alpha_leaves_beta_untouched(
    company: Company, beta: Company, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        say("quiero agendar una demo, mi correo es ana@ejemplo.com")
        say("1")
    assert Lead.objects.filter(booking_at=THU_10).count() == 1

    with tenant_context(beta):
        company_setup(beta)
        assert Lead.objects.filter(booking_at__isnull=False).count() == 0
        assert LeadEvent.objects.filter(kind=LeadEvent.Kind.BOOKED).count() == 0
        assert booking_slots_next(settings=lead_settings_get(), now=NOW)[0] == THU_10
    assert [email.to for email, _ in invitations()] == [
        ["ana@ejemplo.com"],
        [owner_email("alpha")],
    ]
