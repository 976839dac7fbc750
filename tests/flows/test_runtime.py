"""Flows at work (apps.flows.services): each trigger on the visitor's messages and on lead
changes, each action, once per conversation, every run recorded on the conversation and the
lead's timeline, the bot never talking over a person, and versions saved and restored.

In-process like tests/leads/test_handoff.py: Celery is eager and `on_commit` runs at once, so a
`message_receive` stores the message, runs the flows and the assistant (the offline
responder) and everything after."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.accounts.models import Role
from apps.audit.models import AuditLog
from apps.channels.models import WidgetSettings
from apps.conversations.models import Conversation, Message
from apps.conversations.services import message_receive
from apps.flows.models import FlowRun, FlowVersion
from apps.flows.services import (
    flow_version_restore,
    flow_version_save,
    flows_active,
    flows_on_lead_change,
)
from apps.flows.spec import FlowError
from apps.followups.models import FollowUp
from apps.leads.models import Lead, LeadEvent, LeadSettings, WebhookDelivery
from apps.leads.services import lead_for_conversation, lead_stage_set
from apps.tenants.models import Company
from tests.conftest import member, owner
from tests.fakes.crm_server import FakeCrm

SESSION = "flows-visitor-1"


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    settings.OPENAI_API_KEY = ""  # the offline responder answers


@pytest.fixture
def company(alpha: Company) -> Iterator[Company]:
    alpha.language = "en"
    alpha.save(update_fields=["language"])
    with tenant_context(alpha):
        yield alpha


def flows(source: str) -> FlowVersion:
    return flow_version_save(source=source, author=None)


def writes(text: str, session: str = SESSION, **context: Any) -> Message:
    return message_receive(
        channel="web", session_id=session, text=text, context=context or None
    ).message


def conversation(session: str = SESSION) -> Conversation:
    return Conversation.objects.get(session_id=session)


def transcript(session: str = SESSION) -> list[tuple[str, str, str]]:
    return list(
        Message.objects.filter(conversation__session_id=session)
        .order_by("id")
        .values_list("role", "intent", "text")
    )


def runs(session: str = SESSION) -> list[tuple[str, int, str, str]]:
    return list(
        FlowRun.objects.filter(conversation__session_id=session)
        .order_by("id")
        .values_list("flow", "rule_index", "trigger", "detail")
    )


def lead(session: str = SESSION) -> Lead:
    found = lead_for_conversation(conversation(session).pk)
    assert found is not None
    return found


# --- Triggers on messages ----------------------------------------------------------------------


def test_a_new_visitor_gets_the_welcome_flow_before_the_answer_once(company: Company) -> None:
    flows("""
flows:
  onboarding:
    - trigger: nuevo_usuario
      message: "¡Bienvenido! Soy tu asistente de ventas..."
      actions: [identificar_necesidad]
""")
    writes("Hello there")
    writes("Hello again")

    roles = [(role, intent) for role, intent, _text in transcript()]
    assert roles == [
        ("visitor", ""),
        ("assistant", "flow"),  # the flow's message
        ("assistant", "flow"),  # identify_need's question
        ("assistant", "greeting"),  # the assistant's own answer
        ("visitor", ""),
        ("assistant", "greeting"),
    ]
    texts = [text for _role, _intent, text in transcript()]
    assert texts[1] == "¡Bienvenido! Soy tu asistente de ventas..."
    assert texts[2].endswith("?")  # the industry template's need question
    assert runs() == [("onboarding", 0, "nuevo_usuario", "first message")]
    [run] = FlowRun.objects.all()
    assert run.version == 1
    assert [o["action"] for o in run.outcomes] == ["message", "identify_need"]
    assert all(o["ok"] for o in run.outcomes)
    assert lead().asked == ["need"]
    event = LeadEvent.objects.get(kind=LeadEvent.Kind.FLOW)
    assert (event.new, event.data["trigger"], event.conversation_id) == (
        "onboarding #1", "nuevo_usuario", conversation().pk,
    )  # fmt: skip


def test_a_returning_contact_is_not_a_new_visitor(company: Company) -> None:
    flows("flows:\n  w:\n    - trigger: new_visitor\n      message: Welcome!\n")
    writes("Hi", session="s-1")
    # Another conversation of the same contact (the widget's visitor id) is not new.
    message_receive(channel="web", session_id="s-2", text="Hi", contact_external_id="s-1")

    assert [t for _r, _i, t in transcript("s-1")][1] == "Welcome!"
    assert "Welcome!" not in [t for _r, _i, t in transcript("s-2")]


@pytest.mark.parametrize(
    ("trigger", "text", "detail"),
    [
        (
            "{keyword: [precio, cuánto cuesta]}",
            "¿Cuanto cuesta el plan?",
            "keyword 'cuanto cuesta'",
        ),
        ("{keyword: precio}", "PRECIO por favor", "keyword 'precio'"),
        ("{intent: precio}", "How much is the premium plan?", "intent price"),
        ("{intent: agendar}", "Can we schedule a demo?", "intent booking"),
        ("{intent: queja}", "This is terrible, it does not work", "intent complaint"),
        ("{intent: humano}", "I want to talk to a person", "intent person"),
    ],
)
def test_keywords_and_intents_trigger_their_rule(
    company: Company, trigger: str, text: str, detail: str
) -> None:
    flows(f"flows:\n  f:\n    - trigger: {trigger}\n      message: Flow says hi\n")
    writes(text)
    assert [(flow, index, found) for flow, index, _label, found in runs()] == [("f", 0, detail)]
    assert "Flow says hi" in [t for _r, _i, t in transcript()]


@pytest.mark.parametrize("text", ["precios del reloj", "hello", "apreciación"])
def test_a_keyword_matches_whole_words_only(company: Company, text: str) -> None:
    flows("flows:\n  f:\n    - trigger: {keyword: precio}\n      message: Flow says hi\n")
    writes(text)
    assert runs() == []


@pytest.mark.parametrize(
    ("pattern", "page", "fires"),
    [
        ('"/precios*"', "https://shop.example.com/precios/hogar?utm_source=x", True),
        ('"/precios*"', "https://shop.example.com/blog/precios", False),
        ('"*checkout*"', "https://shop.example.com/cart/checkout", True),
        ("pricing", "https://shop.example.com/en/pricing?plan=pro", True),
        ("pricing", "https://shop.example.com/en/about", False),
    ],
)
def test_the_page_trigger_reads_the_conversation_context(
    company: Company, pattern: str, page: str, fires: bool
) -> None:
    flows(f"flows:\n  f:\n    - trigger: {{page: {pattern}}}\n      message: Page flow\n")
    writes("Hi", page=page)
    assert bool(runs()) is fires


def test_business_hours_triggers_follow_the_widget_hours(company: Company) -> None:
    local = timezone.now().astimezone(zoneinfo.ZoneInfo("America/Bogota"))
    WidgetSettings.objects.update_or_create(pk=1, defaults={
        "hours_enabled": True, "hours_days": [0, 1, 2, 3, 4, 5, 6],
        "hours_start": (local + timedelta(hours=2)).time().replace(second=0, microsecond=0),
        "hours_end": (local + timedelta(hours=3)).time().replace(second=0, microsecond=0),
        "time_zone": "America/Bogota",
    })  # fmt: skip
    flows("""
flows:
  hours:
    - trigger: fuera_de_horario
      message: We are closed now
    - trigger: en_horario
      message: We are open
""")
    writes("Hi")
    assert runs() == [("hours", 0, "fuera_de_horario", "outside business hours")]


def test_a_rule_runs_once_per_conversation_unless_once_is_false(company: Company) -> None:
    flows("""
flows:
  f:
    - trigger: {keyword: price}
      message: Once
    - trigger: {keyword: price}
      message: Every time
      once: false
""")
    writes("price?")
    writes("price again?")
    texts = [t for _r, _i, t in transcript()]
    assert texts.count("Once") == 1
    assert texts.count("Every time") == 2
    writes("price?", session="other")
    assert [t for _r, _i, t in transcript("other")].count("Once") == 1


def test_no_flow_message_while_a_person_has_the_conversation(company: Company) -> None:
    flows("flows:\n  f:\n    - trigger: {keyword: price}\n      message: Flow says hi\n")
    writes("hello")
    Conversation.objects.filter(pk=conversation().pk).update(mode=Conversation.Mode.HUMAN)
    writes("price?")
    assert runs() == []
    assert "Flow says hi" not in [t for _r, _i, t in transcript()]


# --- Actions -----------------------------------------------------------------------------------


def test_ask_stores_the_next_message_in_the_lead_field(company: Company) -> None:
    flows("""
flows:
  f:
    - trigger: {keyword: quote}
      actions:
        - ask: {question: "What monthly budget do you have in mind?", field: presupuesto}
        - ask: {question: "Which company are you with?", field: empresa}
""")
    writes("I want a quote")
    assert conversation().context["flow_ask"]["field"] == "company_name"  # the last question
    writes("Globex Andina SAS")
    current = lead()
    assert current.company_name == "Globex Andina SAS"
    assert current.field_sources["company_name"] == "visitor"
    assert "flow_ask" not in conversation().context
    # A typed field is read with the extractors: an amount with its currency.
    Conversation.objects.filter(pk=conversation().pk).update(
        context={"flow_ask": {"field": "budget", "rule": "f:0", "run": 1}}
    )
    writes("unos 2 mil dólares")
    current = lead()
    assert (current.budget_amount, current.budget_currency) == (2000, "USD")
    assert current.field_sources["budget"] == "visitor"  # the flow's answer, not a guess
    # A name is read out of the answer when the extractors can.
    Conversation.objects.filter(pk=conversation().pk).update(
        context={"flow_ask": {"field": "name", "rule": "f:0", "run": 1}}
    )
    writes("Me llamo Lucía Fernández")
    assert lead().name == "Lucía Fernández"
    assert current.field_sources["budget"] == "visitor"  # the flow's answer, not a guess
    # A name is read out of the answer when the extractors can.
    Conversation.objects.filter(pk=conversation().pk).update(
        context={"flow_ask": {"field": "name", "rule": "f:0", "run": 1}}
    )
    writes("Me llamo Lucía Fernández")
    assert lead().name == "Lucía Fernández"


def test_tag_stage_owner_handoff_actions(company: Company) -> None:
    agent = member(company, Role.AGENT, email="closer@alpha.example.com")
    flows("""
flows:
  f:
    - trigger: {keyword: enterprise}
      actions:
        - tag: [enterprise, VIP]
        - set_stage: contactado
        - assign_owner: CLOSER@alpha.example.com
        - handoff
""")
    writes("We need the enterprise plan")

    current = lead()
    assert sorted(current.tags) == ["enterprise", "vip"]
    assert current.stage == "contacted"
    assert current.owner_id == agent.pk
    assert conversation().mode == Conversation.Mode.PENDING_HUMAN
    assert conversation().context["handoff"]["reason"] == "flow"
    [run] = FlowRun.objects.all()
    assert [(o["action"], o["ok"]) for o in run.outcomes] == [
        ("tag", True), ("set_stage", True), ("assign_owner", True), ("handoff", True),
    ]  # fmt: skip


def test_an_action_that_cannot_work_is_recorded_and_the_others_run(company: Company) -> None:
    member(company, Role.VIEWER, email="viewer@alpha.example.com")
    flows("""
flows:
  f:
    - trigger: {keyword: hi}
      actions:
        - assign_owner: viewer@alpha.example.com
        - tag: still-runs
""")
    writes("hi")
    [run] = FlowRun.objects.all()
    assert run.outcomes[0]["ok"] is False
    assert "not an active team member" in run.outcomes[0]["detail"]
    assert run.outcomes[1]["ok"] is True
    assert lead().tags == ["still-runs"]


def test_a_discount_is_offered_with_the_flows_code(company: Company) -> None:
    flows("""
flows:
  f:
    - trigger: {keyword: expensive}
      actions: [descuento_especial, {discount: {code: HOY5}}]
discount:
  code: VUELVE10
  text: "Use {code} this month for 10% off"
""")
    writes("This is too expensive for us")
    texts = [t for r, i, t in transcript() if i == "flow"]
    assert texts == ["Use VUELVE10 this month for 10% off",
                     "I have a special discount for you: use the code HOY5."]  # fmt: skip
    assert LeadEvent.objects.filter(kind="flow", new__startswith="discount").count() == 2


def test_a_follow_up_action_schedules_a_message(company: Company) -> None:
    flows("""
flows:
  f:
    - trigger: {keyword: think}
      actions: [{follow_up: {after: 2d, message: "Did you think about it?"}}]
""")
    before = timezone.now()
    writes("let me think about it")
    [followup] = FollowUp.objects.all()
    assert followup.text == "Did you think about it?"
    assert followup.status == "scheduled"
    assert timedelta(days=2) <= followup.due_at - before < timedelta(days=2, minutes=1)
    assert LeadEvent.objects.filter(kind="followup", new="scheduled").count() == 1


def test_a_webhook_action_posts_the_signed_lead_to_a_url(
    company: Company, settings: Settings
) -> None:
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = True  # the fake CRM listens on 127.0.0.1
    secret = "whsec_flows_0123456789"
    with FakeCrm(secret=secret) as crm:
        LeadSettings.objects.update_or_create(pk=1, defaults={"crm_webhook_secret": secret})
        url = crm.hook_url("/flows")
        flows(
            f"flows:\n  f:\n    - trigger: {{keyword: demo}}\n      actions: [webhook: '{url}']\n"
        )
        writes("I want a demo, I'm ana@acme.example")
        [delivery] = WebhookDelivery.objects.all()
        assert (delivery.event, delivery.status, delivery.url) == ("flow.action", "delivered", url)
        [received] = crm.received
        assert received.signature_valid
        assert received.json["event"] == "flow.action"
        assert (received.json["flow"], received.json["rule"]) == ("f", 1)
        assert received.json["lead"]["email"] == "ana@acme.example"


# --- Lead changes ------------------------------------------------------------------------------


def test_a_stage_change_and_a_score_threshold_run_their_rules(company: Company) -> None:
    flows("""
flows:
  f:
    - trigger: {stage: ganado}
      message: Thank you for your purchase!
    - trigger: {score: 40}
      actions: [{tag: warm}]
""")
    writes("hello")
    current = lead()
    lead_stage_set(lead=current, stage="won")
    assert "Thank you for your purchase!" in [t for _r, _i, t in transcript()]
    assert flows_on_lead_change(lead_id=current.pk, kind="score", old=10, new=39) == []
    [run] = flows_on_lead_change(lead_id=current.pk, kind="score", old=39, new=55)
    assert run.detail == "score 39 → 55"
    assert lead().tags == ["warm"]
    # Once per conversation.
    assert flows_on_lead_change(lead_id=current.pk, kind="score", old=10, new=80) == []


def test_a_lead_change_queues_the_flows_task_only_when_a_rule_would_run(
    company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.flows import hooks
    from apps.flows.tasks import lead_changed_task

    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(lead_changed_task, "delay", lambda *args: queued.append(args))
    hooks.on_lead_changed(7, "score", 4, 5)  # no flows at all: every visitor message
    flows("flows:\n  f:\n    - trigger: {score: 40}\n      actions: [{tag: warm}]\n")
    hooks.on_lead_changed(7, "score", 10, 39)
    hooks.on_lead_changed(7, "stage", "new", "won")
    assert queued == []
    hooks.on_lead_changed(7, "score", 39, 55)
    assert queued == [(7, "score", 39, 55)]


def test_a_reply_looks_the_flows_up_once(company: Company, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its hooks ask several times (the message's rules, every change of the lead, the
    prompt); outside a reply every call looks again, so a new version counts at once."""
    from apps.conversations import services as conversations
    from apps.flows import services

    flows("flows:\n  f:\n    - trigger: {keyword: precio}\n      actions: [{tag: price}]\n")
    looked: list[int] = []
    look = services._flows_active
    monkeypatch.setattr(services, "_flows_active", lambda: looked.append(1) or look())
    flows_active()
    flows_active()
    assert len(looked) == 2
    looked.clear()
    with conversations.reply_scoped():
        assert flows_active() is flows_active()
    assert len(looked) == 1
    looked.clear()
    replies = Message.objects.filter(role=Message.Role.ASSISTANT)
    writes("Hola, ¿cuál es el precio? Necesito un seguro, presupuesto 500 dólares")
    assert replies.count() == 1 and len(looked) == 1
    assert "price" in lead_for_conversation(conversation().pk).tags


# --- Versions ----------------------------------------------------------------------------------


def test_versions_are_saved_validated_restored_and_audited(company: Company) -> None:
    boss = owner(company)
    rule = "flows:\n  a:\n    - trigger: nuevo_usuario\n      message: "
    one = flow_version_save(source=rule + "One\n", author=boss)
    two = flow_version_save(source=rule + "Two\n", author=boss)
    assert flows_active().rules[0].message == "Two"
    with pytest.raises(FlowError):
        flow_version_save(source="flows: [", author=boss)
    assert FlowVersion.objects.count() == 2

    three = flow_version_restore(version=one, author=boss)

    assert (one.number, two.number, three.number) == (1, 2, 3)
    assert (three.source, three.restored_from, three.note) == (one.source, 1, "restored v1")
    assert flows_active().rules[0].message == "One"
    audited = AuditLog.objects.filter(action__startswith="flows.").order_by("id")
    assert list(audited.values_list("action", flat=True)) == [
        "flows.save", "flows.save", "flows.restore",
    ]  # fmt: skip


def test_another_companys_flows_never_run_here(company: Company, beta: Company) -> None:
    with tenant_context(beta):
        flows("flows:\n  b:\n    - trigger: nuevo_usuario\n      message: Beta!\n")
    with tenant_context(company):
        writes("Hi")
        assert "Beta!" not in [t for _r, _i, t in transcript()]
        assert runs() == []


def test_the_model_is_told_only_of_the_flow_messages_since_its_last_answer(
    company: Company,
) -> None:
    from apps.flows.hooks import prompt_state

    flows("flows:\n  f:\n    - trigger: {keyword: precio}\n      message: Te cuento los precios\n")
    writes("¿Cuál es el precio?")
    chat = conversation()
    # The reply to that message was stored after the flow's message: nothing is pending now.
    assert prompt_state(chat.pk) == ""
    Message.objects.filter(conversation=chat, role="assistant", reply_to__isnull=False).delete()
    assert prompt_state(chat.pk) == (
        "Conversation flow (internal): you already sent these messages; do not repeat them:\n"
        "- Te cuento los precios"
    )
