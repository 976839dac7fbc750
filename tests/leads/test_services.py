"""Leads from conversations: creation, merge rules by source, scoring and thresholds,
qualification, joining duplicates, the team's edits, and what the assistant is told."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.analytics.models import Event
from apps.assistants.models import Provider
from apps.assistants.services import assistant_profile_get
from apps.conversations.models import Channel, Contact, Conversation, Message, UsageMonth
from apps.conversations.services import message_receive, reply_generate, reply_scoped
from apps.leads import hooks
from apps.leads.extract_model import lead_model_extract, lead_model_reading_schedule
from apps.leads.models import Lead, LeadEvent, LeadSettings, Source, Stage
from apps.leads.scoring import ScoreInput, score_compute
from apps.leads.services import (
    company_today,
    lead_fields_edit,
    lead_for_contact,
    lead_for_conversation,
    lead_for_reply,
    lead_message_process,
    lead_note_add,
    lead_owner_set,
    lead_settings_get,
    lead_stage_set,
    lead_tags_set,
    lead_update,
)
from apps.tenants.models import Company
from tests.api.conftest import fake_clean, fake_server  # noqa: F401 - fixture
from tests.conftest import member
from tests.fakes.openai_server import FakeOpenAI

TODAY = date(2026, 11, 25)
WEIGHTS = {"need": 25, "budget": 25, "authority": 15, "timeline": 20, "engagement": 15}


@pytest.fixture(autouse=True)
def _on_commit_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks and live events sent on commit run at once (the test's transaction never
    commits)."""
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


@pytest.fixture
def llm(fake_server: FakeOpenAI) -> Iterator[FakeOpenAI]:  # noqa: F811
    fake_clean(fake_server)
    yield fake_server
    fake_clean(fake_server)


@pytest.fixture
def company(alpha: Company) -> Iterator[Company]:
    with tenant_context(alpha):
        yield alpha


def say(text: str, session: str = "visitor-1", channel: str = Channel.API, **kw: Any) -> Message:
    received = message_receive(channel=channel, session_id=session, text=text, generate=False, **kw)
    lead_message_process(message=received.message)
    return received.message


def lead_of(session: str = "visitor-1", channel: str = Channel.API) -> Lead:
    contact = Contact.objects.get(channel=channel, external_id=session)
    return Lead.objects.get(pk=contact.lead_id)


def field_events(lead: Lead) -> list[tuple[str, str, str, str]]:
    return [
        (e.field, e.old, e.new, e.source)
        for e in LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.FIELD).order_by("id")
    ]


# -- scoring ------------------------------------------------------------------------------------


def test_an_empty_lead_scores_zero_with_a_reason_for_every_part() -> None:
    score = score_compute(ScoreInput(), weights=WEIGHTS, today=TODAY)
    assert score.value == 0
    assert score.breakdown == {
        "need": {"points": 0.0, "max": 25, "reason": "need_unknown"},
        "budget": {"points": 0.0, "max": 25, "reason": "budget_unknown"},
        "authority": {"points": 0.0, "max": 15, "reason": "authority_unknown"},
        "timeline": {"points": 0.0, "max": 20, "reason": "timeline_unknown"},
        "engagement": {"points": 0.0, "max": 15, "reason": "engagement_none"},
    }


def test_a_complete_urgent_decider_scores_one_hundred() -> None:
    lead = ScoreInput(
        need="seguro de auto",
        budget_amount=Decimal("5000"),
        role="Gerente general",
        timeline_date=TODAY + timedelta(days=7),
        email="a@b.co",
        visitor_messages=6,
    )
    score = score_compute(lead, weights=WEIGHTS, today=TODAY)
    assert score.value == 100
    assert [part["reason"] for part in score.breakdown.values()] == [
        "need_stated", "budget_stated", "authority_decider", "timeline_soon",
        "engagement_active",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("days", "points", "reason"),
    [(30, 20.0, "timeline_soon"), (90, 20.0, "timeline_soon"), (150, 10.0, "timeline_later"),
     (400, 5.0, "timeline_far")],
)  # fmt: skip
def test_the_timeline_earns_less_the_further_away(days: int, points: float, reason: str) -> None:
    lead = ScoreInput(timeline="x", timeline_date=TODAY + timedelta(days=days))
    part = score_compute(lead, weights=WEIGHTS, today=TODAY).breakdown["timeline"]
    assert (part["points"], part["reason"]) == (points, reason)


def test_a_role_that_may_not_decide_earns_half_the_authority_points() -> None:
    part = score_compute(ScoreInput(role="analista"), weights=WEIGHTS, today=TODAY)
    assert part.breakdown["authority"] == {"points": 7.5, "max": 15, "reason": "authority_role"}


def test_weights_need_not_add_up_to_one_hundred() -> None:
    weights = {"need": 1, "budget": 1, "authority": 0, "timeline": 0, "engagement": 0}
    score = score_compute(ScoreInput(need="x"), weights=weights, today=TODAY)
    assert score.value == 50


# -- creating and filling a lead ------------------------------------------------------------------


def test_the_first_message_creates_a_lead_with_its_source_and_first_page(company: Company) -> None:
    say("Hola", context={"page": "https://shop.example/precios", "utm_source": "google",
                         "secret_internal": "x"})  # fmt: skip
    lead = lead_of()
    assert (lead.source_channel, lead.first_page) == ("api", "https://shop.example/precios")
    assert lead.context == {"utm_source": "google"}
    assert lead.stage == Stage.NEW
    assert lead.visitor_messages == 1
    assert list(LeadEvent.objects.filter(lead=lead).values_list("kind", flat=True)) == [
        "score",  # engagement: one message
        "created",
    ]
    assert Event.objects.filter(kind="lead.created", data__lead_id=lead.pk).count() == 1


def test_what_the_visitor_says_fills_the_lead_with_an_event_per_field(company: Company) -> None:
    message = say(
        "Me llamo Ana Pérez, soy gerente de compras en Acme. Necesito un seguro para la flota "
        "de 12 camiones, presupuesto 50 mil pesos, para el próximo mes. ana@acme.mx"
    )
    lead = lead_of()
    assert lead.name == "Ana Pérez"
    assert lead.email == "ana@acme.mx"
    assert lead.role.lower().startswith("gerente de compras")
    assert lead.company_name == "Acme"
    assert lead.need.startswith("Necesito un seguro para la flota")
    assert (lead.budget_amount, lead.budget_currency) == (Decimal("50000.00"), "COP")
    today = company_today()
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    assert (lead.timeline, lead.timeline_date) == ("el próximo mes", next_month)
    events = LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.FIELD)
    assert {e.field for e in events} == {
        "name", "email", "role", "company_name", "need", "budget", "timeline",
    }  # fmt: skip
    assert {e.source for e in events} == {"extractor"}
    assert {e.message_id for e in events} == {message.pk}
    assert lead.field_sources["email"] == "extractor"


def test_processing_the_same_message_twice_changes_nothing(company: Company) -> None:
    message = say("Mi correo es ana@acme.mx y mi presupuesto es de 2k USD")
    before = LeadEvent.objects.count()
    lead_message_process(message=message)
    assert LeadEvent.objects.count() == before
    assert lead_of().visitor_messages == 1


def test_every_message_is_counted_with_its_time_whatever_else_changes(company: Company) -> None:
    say("Hola")  # no field: only the score moves (engagement)
    first = lead_of()
    assert first.visitor_messages == 1 and first.last_activity_at is not None
    message = say("Mi correo es ana@acme.mx")  # a field changes
    second = lead_of()
    assert second.email == "ana@acme.mx" and second.visitor_messages == 2
    assert second.last_activity_at > first.last_activity_at
    lead_message_process(message=message)  # nothing changes, the score included
    third = lead_of()
    assert (third.visitor_messages, third.score) == (2, second.score)
    assert third.last_activity_at > second.last_activity_at


def test_a_guess_never_overwrites_what_the_visitor_stated(company: Company) -> None:
    say("Mi presupuesto es de 2,000 USD")
    lead = lead_of()
    changed = lead_update(
        lead=lead, values={"budget": {"amount": "900", "currency": "USD"}, "role": "CTO"},
        source=Source.MODEL,
    )  # fmt: skip
    lead.refresh_from_db()
    assert changed == ["role"]
    assert (lead.budget_amount, lead.budget_currency) == (Decimal("2000.00"), "USD")
    assert lead.field_sources == {"budget": "extractor", "role": "model"}


def test_the_visitor_may_correct_what_they_said(company: Company) -> None:
    say("escríbeme a ana@viejo.mx")
    say("perdón, mejor a ana@nuevo.mx")
    lead = lead_of()
    assert lead.email == "ana@nuevo.mx"
    assert field_events(lead) == [
        ("email", "", "ana@viejo.mx", "extractor"),
        ("email", "ana@viejo.mx", "ana@nuevo.mx", "extractor"),
    ]


def test_a_team_members_edit_stands_over_what_the_visitor_says(company: Company) -> None:
    say("mi correo es ana@acme.mx")
    user = member(company, Role.AGENT)
    lead = lead_of()
    assert lead_fields_edit(lead=lead, values={"email": "ventas@acme.mx"}, actor=user) == ["email"]
    say("mi correo es otra@acme.mx")
    lead.refresh_from_db()
    assert lead.email == "ventas@acme.mx"
    event = LeadEvent.objects.filter(lead=lead, field="email").order_by("-id").first()
    assert (event.source, event.actor_id) == ("agent", user.pk)


def test_a_team_member_may_clear_a_field(company: Company) -> None:
    say("presupuesto 5000 dólares")
    lead = lead_of()
    assert lead_fields_edit(lead=lead, values={"budget": None}, actor=None) == ["budget"]
    lead.refresh_from_db()
    assert lead.budget_amount is None and "budget" not in lead.field_sources


def test_the_need_is_only_filled_once_by_the_rules(company: Company) -> None:
    say("Necesito un seguro para mi casa en Cali")
    say("quiero agendar una cita para mañana")
    say("también busco algo para el carro de mi esposa")
    assert lead_of().need == "Necesito un seguro para mi casa en Cali"


def test_a_pre_chat_form_is_confirmed_by_the_visitor(company: Company) -> None:
    contact = Contact.objects.create(
        channel=Channel.WEB, external_id="w-1", name="Ana", email="ana@acme.mx"
    )
    conversation = Conversation.objects.create(contact=contact, channel=Channel.WEB,
                                               session_id="w-1")  # fmt: skip
    lead = lead_for_contact(contact=contact, conversation=conversation)
    assert (lead.name, lead.email) == ("Ana", "ana@acme.mx")
    assert lead.field_sources == {"name": "visitor", "email": "visitor"}
    lead_update(lead=lead, values={"email": "otra@acme.mx"}, source=Source.EXTRACTOR)
    lead.refresh_from_db()
    assert lead.email == "ana@acme.mx"


def test_unknown_fields_are_refused(company: Company) -> None:
    say("hola")
    with pytest.raises(ValueError, match="unknown lead field"):
        lead_update(lead=lead_of(), values={"salary": 1}, source=Source.AGENT)


# -- qualification ---------------------------------------------------------------------------------


def test_crossing_the_threshold_qualifies_once_and_tells_the_team(
    company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    notified: list[int] = []
    from apps.leads import tasks

    monkeypatch.setattr(tasks.lead_qualified_notify_task, "delay", notified.append)
    say("Necesito un seguro de auto para mi empresa")
    assert lead_of().stage == Stage.NEW
    say("Soy el gerente general, presupuesto 3 mil dólares, lo necesito la próxima semana")
    lead = lead_of()
    assert lead.score >= lead_settings_get().qualify_threshold
    assert lead.stage == Stage.QUALIFIED and lead.qualified_at is not None
    assert notified == [lead.pk]
    say("mi correo es jefe@empresa.co")
    assert notified == [lead.pk]
    kinds = list(LeadEvent.objects.filter(lead=lead).values_list("kind", flat=True))
    assert kinds.count("qualified") == 1
    assert Event.objects.filter(kind="lead.qualified", data__lead_id=lead.pk).count() == 1


def test_the_companys_threshold_and_weights_decide(company: Company) -> None:
    settings = lead_settings_get()
    settings.qualify_threshold = 20
    settings.weight_need = 80
    settings.save()
    say("Necesito un seguro de auto para mi empresa")
    lead = lead_of()
    assert lead.stage == Stage.QUALIFIED
    assert lead.score_breakdown["need"] == {"points": 80.0, "max": 80, "reason": "need_stated"}


def test_a_lead_a_person_moved_on_keeps_its_stage_when_it_qualifies(company: Company) -> None:
    say("hola")
    lead = lead_of()
    lead_stage_set(lead=lead, stage=Stage.CONTACTED)
    say("Necesito seguro de auto, soy el dueño, 2 millones de pesos, para esta semana, a@b.co")
    lead.refresh_from_db()
    assert lead.stage == Stage.CONTACTED and lead.qualified_at is not None


# -- the team's changes ---------------------------------------------------------------------------


def test_stage_owner_tags_and_notes_are_events_with_their_actor(company: Company) -> None:
    say("hola")
    lead = lead_of()
    agent = member(company, Role.AGENT, "agente@alpha.example.com")
    owner = member(company, Role.OWNER, "jefa@alpha.example.com")
    assert lead_stage_set(lead=lead, stage=Stage.WON, actor=owner)
    assert not lead_stage_set(lead=lead, stage=Stage.WON, actor=owner)
    assert lead_owner_set(lead=lead, owner=agent, actor=owner)
    assert lead_tags_set(lead=lead, tags="VIP, flota ,flota, <b>", actor=owner)
    note = lead_note_add(lead=lead, text="Llamar el lunes", actor=agent)
    assert note is not None and lead_note_add(lead=lead, text="  ", actor=agent) is None
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id, lead.tags) == ("won", agent.pk, ["b", "flota", "vip"])
    assert "Llamar el lunes" in lead.notes
    events = [
        (e.kind, e.old, e.new, e.actor_id)
        for e in LeadEvent.objects.filter(lead=lead).exclude(kind__in=["created", "score"])
        .order_by("id")
    ]  # fmt: skip
    assert events == [
        ("stage", "new", "won", owner.pk),
        ("owner", "", str(agent), owner.pk),
        ("tags", "", "b, flota, vip", owner.pk),
        ("note", "", "Llamar el lunes", agent.pk),
    ]


# -- the same person on two channels -----------------------------------------------------------


def test_the_same_email_on_two_channels_joins_the_leads(company: Company) -> None:
    say("Necesito un seguro de hogar", session="web-1", channel=Channel.WEB)
    web_lead = lead_of("web-1", Channel.WEB)
    say("hola, presupuesto 4 mil dólares", session="tg-1", channel=Channel.TELEGRAM)
    say("soy ana@acme.mx", session="tg-1", channel=Channel.TELEGRAM)
    say("mi correo: ana@acme.mx", session="web-1", channel=Channel.WEB)
    telegram_lead = lead_of("tg-1", Channel.TELEGRAM)
    assert lead_of("web-1", Channel.WEB).pk == telegram_lead.pk
    assert Lead.objects.count() == 1
    merged = Lead.objects.get()
    # The older lead remains, with what both knew.
    assert merged.pk == web_lead.pk
    assert merged.need == "Necesito un seguro de hogar"
    assert merged.budget_amount == Decimal("4000.00")
    assert merged.visitor_messages == 4
    assert LeadEvent.objects.filter(lead=merged, kind="merged").count() == 1


# -- what the assistant knows and asks ---------------------------------------------------------


def test_the_prompt_names_what_is_known_and_the_one_thing_to_ask(company: Company) -> None:
    message = say("Necesito un seguro de auto, mi presupuesto es 500 dólares")
    text = hooks.prompt_state(message.conversation_id)
    assert "need: Necesito un seguro de auto" in text
    assert "budget: 500 USD" in text
    assert "ask about timeline only" in text


def test_a_messages_fields_are_saved_with_the_score_and_their_events_in_one_insert(
    company: Company,
) -> None:
    say("Hola")
    before = lead_of()
    received = message_receive(channel=Channel.API, session_id="visitor-1",
                               text="Me llamo Ana Pérez y necesito un seguro de auto",
                               generate=False, caller_replies=True)  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        lead_message_process(message=received.message)
    statements = [query["sql"] for query in queries.captured_queries]
    assert sum(sql.startswith('UPDATE "leads_lead"') for sql in statements) == 1
    # The fields' events in one INSERT, the score's in another.
    assert sum(sql.startswith('INSERT INTO "leads_leadevent"') for sql in statements) == 2
    lead = lead_of()
    assert (lead.name, lead.visitor_messages) == ("Ana Pérez", 2)
    assert lead.need.lower().startswith("necesito un seguro de auto")
    assert lead.field_sources == {"name": "extractor", "need": "extractor"}
    assert lead.score > before.score
    assert [(e.field, e.message_id) for e in LeadEvent.objects.filter(
        lead=lead, kind=LeadEvent.Kind.FIELD).order_by("id")] == [
        ("name", received.message.pk), ("need", received.message.pk)]  # fmt: skip
    score = LeadEvent.objects.get(lead=lead, kind=LeadEvent.Kind.SCORE, new=str(lead.score))
    assert score.old == str(before.score)


def test_a_reply_reads_its_lead_once_and_the_model_hears_what_the_message_said(
    company: Company, llm: FakeOpenAI
) -> None:
    """The booking check, the known fields and the prompt's lead state share the lead the
    message just updated: no read of the lead before the model is called."""
    with model_on(llm):
        received = message_receive(channel=Channel.API, session_id="visitor-1",
                                   text="Necesito un seguro de auto, mi presupuesto es 500 dólares",
                                   generate=False, caller_replies=True)  # fmt: skip
        with CaptureQueriesContext(connection) as queries:
            reply = reply_generate(message_id=received.message.pk)
    assert reply is not None and reply.provider != "offline"
    statements = [query["sql"] for query in queries.captured_queries]
    stored = next(i for i, sql in enumerate(statements)
                  if sql.startswith('UPDATE "conversations_message" SET "text"'))  # fmt: skip
    assert not [sql for sql in statements[:stored] if sql.startswith("SELECT l.* FROM leads_lead")]
    [request] = [r for r in llm.requests if not (r.json or {}).get("response_format")]
    system = request.json["messages"][0]["content"]
    assert "need: Necesito un seguro de auto" in system and "budget: 500 USD" in system


def test_a_reply_whose_message_merges_two_leads_tells_the_model_what_both_knew(
    company: Company, llm: FakeOpenAI
) -> None:
    say("Necesito un seguro de hogar, presupuesto 4 mil dólares", session="web-1",
        channel=Channel.WEB)  # fmt: skip
    say("soy ana@acme.mx", session="web-1", channel=Channel.WEB)
    with model_on(llm):
        received = message_receive(
            channel=Channel.API,
            session_id="api-1",
            text="soy ana@acme.mx",
            generate=False,
            caller_replies=True,
        )
        reply = reply_generate(message_id=received.message.pk)
    assert reply is not None and Lead.objects.count() == 1
    [request] = [r for r in llm.requests if not (r.json or {}).get("response_format")]
    system = request.json["messages"][0]["content"]
    assert "need: Necesito un seguro de hogar" in system and "budget: 4,000 USD" in system


def test_a_replys_hooks_share_the_lead_until_another_copy_is_saved(company: Company) -> None:
    conversation_id = say("Hola").conversation_id
    with reply_scoped():
        with CaptureQueriesContext(connection) as queries:
            first = lead_for_reply(conversation_id)
            assert first is not None and lead_for_reply(conversation_id) is first
        assert len(queries) == 1
        first.save()  # the shared copy itself: still shared
        assert lead_for_reply(conversation_id) is first
        other = Lead.objects.get(pk=first.pk)
        other.name = "Ana"
        other.save()
        again = lead_for_reply(conversation_id)
        assert again is not None and again is not first and again.name == "Ana"
    with CaptureQueriesContext(connection) as queries:
        lead_for_reply(conversation_id)
        lead_for_reply(conversation_id)
    assert len(queries) == 2  # outside a reply: read each time


def test_the_offline_assistant_never_asks_again_for_what_the_lead_knows(company: Company) -> None:
    received = message_receive(channel=Channel.API, session_id="v-9", text="Hola", generate=False)
    first = reply_generate(message_id=received.message.pk)
    assert first is not None
    asked = list(Lead.objects.get().asked)
    second_in = message_receive(
        channel=Channel.API,
        session_id="v-9",
        text="Necesito un seguro de auto; mi presupuesto es de 2 millones de pesos y lo "
        "quiero para la próxima semana",
        generate=False,
    )
    second = reply_generate(message_id=second_in.message.pk)
    assert second is not None
    lead = Lead.objects.get()
    assert {"need", "budget", "timeline"} <= hooks.known_fields(second_in.conversation)
    # Whatever it asked, it was never a question about something already answered.
    assert set(lead.asked) - set(asked) <= {"authority"}


# -- the model's reading ---------------------------------------------------------------------------


@contextlib.contextmanager
def model_on(fake_openai: FakeOpenAI) -> Iterator[None]:
    from tests.api.test_pipeline import _close_model_clients

    profile = assistant_profile_get()
    profile.provider = Provider.AUTO
    profile.api_base_url = fake_openai.base_url
    profile.api_key = "sk-leads-test"
    profile.save()
    _close_model_clients()
    try:
        yield
    finally:
        _close_model_clients()


def reading_requests(fake_openai: FakeOpenAI) -> list[Any]:
    return [r for r in fake_openai.requests if (r.json or {}).get("response_format")]


def test_the_model_reads_what_rules_cannot_and_is_counted(
    company: Company, llm: FakeOpenAI
) -> None:
    llm.queue_json({
        "name": None, "company_name": "Transportes Ruiz", "role": "jefe de flota",
        "need": "Asegurar 12 camiones de reparto", "budget_amount": 900,
        "budget_currency": "USD", "timeline": "antes de fin de año",
        "preferred_channel": "whatsapp", "preferred_time": None,
    })  # fmt: skip
    with model_on(llm):
        message = say("Tengo unos camiones que quiero asegurar, tengo hasta 3 mil dólares")
        changed = lead_model_extract(message_id=message.pk)
    [request] = reading_requests(llm)
    schema = request.json["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["name"] == "lead"
    assert "Visitor: Tengo unos camiones" in request.json["messages"][1]["content"]
    lead = lead_of()
    assert sorted(changed) == ["company_name", "need", "preferred_channel", "role", "timeline"]
    # The visitor's exact amount stands over the model's reading.
    assert (lead.budget_amount, lead.budget_currency) == (Decimal("3000.00"), "USD")
    assert lead.field_sources["budget"] == "extractor"
    assert lead.field_sources["need"] == "model"
    usage = UsageMonth.objects.get()
    assert usage.input_tokens > 0 and usage.replies == 0


def test_the_model_is_not_asked_when_the_company_turned_it_off_or_nothing_is_missing(
    company: Company,
    llm: FakeOpenAI,
) -> None:
    settings = LeadSettings.objects.get_or_create(pk=1)[0]
    settings.model_reading = False
    settings.save()
    with model_on(llm):
        message = say("Tengo unos camiones que quiero asegurar pronto")
        assert lead_model_extract(message_id=message.pk) == []
        settings.model_reading = True
        settings.save()
        assert lead_model_extract(message_id=say("ok", session="v2").pk) == []  # too short
    assert reading_requests(llm) == []


def test_a_model_failure_leaves_the_lead_as_the_rules_read_it(
    company: Company,
    llm: FakeOpenAI,
) -> None:
    llm.queue_fault("500", times=5)
    with model_on(llm):
        message = say("Necesito asegurar mi local comercial, correo: ana@acme.mx")
        assert lead_model_extract(message_id=message.pk) == []
    assert lead_of().email == "ana@acme.mx"


def test_the_model_reads_once_the_conversation_pauses(
    company: Company, llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """Each reply schedules a reading LEAD_MODEL_READING_DELAY_SECONDS later; one scheduled
    for a later message of the same conversation supersedes the earlier ones, whose messages
    it reads too (the last 20 messages)."""
    from apps.leads.tasks import model_extract_task

    settings.LEAD_MODEL_READING_DELAY_SECONDS = 20
    sent: list[tuple[Any, Any, Any]] = []
    monkeypatch.setattr(
        model_extract_task,
        "apply_async",
        lambda args, kwargs, countdown=None: sent.append((args, kwargs, countdown)),
    )
    first = say("Tengo unos camiones que quiero asegurar este año")
    second = say("Somos Transportes Ruiz y yo soy el jefe de flota")
    conversation_id = first.conversation_id
    short = say("ok, gracias")
    assert lead_model_reading_schedule(conversation_id=conversation_id, message_id=first.pk)
    assert lead_model_reading_schedule(conversation_id=conversation_id, message_id=second.pk)
    # Too short to say anything about the visitor: no reading, and the one pending stands.
    assert not lead_model_reading_schedule(conversation_id=conversation_id, message_id=short.pk)
    assert sent == [
        ((first.pk,), {"conversation_id": conversation_id}, 20),
        ((second.pk,), {"conversation_id": conversation_id}, 20),
    ]
    # The reply task passes the text it holds, which is then not read again.
    with CaptureQueriesContext(connection) as queries:
        assert not lead_model_reading_schedule(
            conversation_id=conversation_id, message_id=first.pk, text="ok"
        )
    assert len(queries.captured_queries) == 0 and len(sent) == 2
    llm.queue_json({
        "name": None, "company_name": "Transportes Ruiz", "role": "jefe de flota",
        "need": "Asegurar camiones", "budget_amount": None, "budget_currency": None,
        "timeline": "este año", "preferred_channel": None, "preferred_time": None,
    })  # fmt: skip
    with model_on(llm):
        assert lead_model_extract(message_id=first.pk, conversation_id=conversation_id) == []
        assert reading_requests(llm) == []  # the first message's reading gave way
        changed = lead_model_extract(message_id=second.pk, conversation_id=conversation_id)
    [request] = reading_requests(llm)
    transcript = request.json["messages"][1]["content"]
    assert "Visitor: Tengo unos camiones" in transcript and "jefe de flota" in transcript
    assert {"company_name", "need"} <= set(changed)
    assert lead_of().company_name == "Transportes Ruiz"


def test_a_reading_pending_in_another_conversation_or_company_does_not_count(
    alpha: Company, beta: Company, llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.leads.tasks import model_extract_task

    monkeypatch.setattr(model_extract_task, "apply_async", lambda *a, **kw: None)
    with tenant_context(beta):
        later = say("Quiero asegurar la flota de mi empresa pronto", session="other")
        lead_model_reading_schedule(
            conversation_id=later.conversation_id, message_id=later.pk + 1000
        )
    with tenant_context(alpha):
        first = say("Necesito asegurar mi camioneta de reparto")
        other = say("Busco un seguro para mi casa de campo", session="visitor-2")
        lead_model_reading_schedule(conversation_id=other.conversation_id, message_id=other.pk)
        llm.queue_json({
            "name": None, "company_name": None, "role": None, "need": "Asegurar una camioneta",
            "budget_amount": None, "budget_currency": None, "timeline": None,
            "preferred_channel": None, "preferred_time": None,
        })  # fmt: skip
        with model_on(llm):
            lead_model_extract(message_id=first.pk, conversation_id=first.conversation_id)
        assert len(reading_requests(llm)) == 1


# -- isolation -------------------------------------------------------------------------------------


def test_leads_stay_in_their_company(alpha: Company, beta: Company) -> None:
    with tenant_context(alpha):
        say("Necesito un seguro, ana@acme.mx")
        alpha_lead = lead_of()
    with tenant_context(beta):
        say("hola", session="visitor-1")
        assert Lead.objects.count() == 1
        assert not Lead.objects.filter(email="ana@acme.mx").exists()
        assert LeadEvent.objects.filter(field="email").count() == 0
    with tenant_context(alpha):
        assert Lead.objects.get().pk == alpha_lead.pk
        assert Lead.objects.get().email == "ana@acme.mx"


def test_a_conversations_lead_is_found_only_in_its_company(alpha: Company, beta: Company) -> None:
    with tenant_context(alpha):
        message = say("Necesito un seguro, ana@acme.mx")
        conversation_id = message.conversation_id
        found = lead_for_conversation(conversation_id)
        assert found is not None and found.pk == lead_of().pk and found.email == "ana@acme.mx"
        assert lead_for_conversation(conversation_id + 1000) is None
    with tenant_context(beta):
        # The same conversation id in another schema is another company's conversation.
        assert lead_for_conversation(conversation_id) is None
        other = say("hola", session="visitor-beta")
        found = lead_for_conversation(other.conversation_id)
        assert found is not None and found.email == ""
