"""The analytics rollup (apps.analytics.rollup) equals a recount from the raw data: a day of
conversations through the real pipeline (web and API, offline answers and model answers with
tokens, handoffs, leads captured, qualified, booked and won) is rolled up in small batches,
with events arriving between runs, and every figure matches what the conversations, messages
and leads say. Events are counted once, late commits are waited for, a rebuild gives the same,
and the staff's per-company usage matches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Count, Min, Sum
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.analytics import rollup
from apps.analytics.models import (
    TTFT_BUCKETS,
    ContactDay,
    Event,
    HourlyStat,
    ModelDailyStat,
    PageDailyStat,
    RollupState,
)
from apps.analytics.rollup import rollup_batch, rollup_rebuild, rollup_run, ttft_bucket
from apps.analytics.selectors import analytics_summary, percentile, period_parse
from apps.assistants.services import assistant_profile_get
from apps.conversations.models import Conversation, Message
from apps.conversations.services import message_receive
from apps.leads.handoff import conversation_handoff_request
from apps.leads.models import Lead, LeadEvent
from apps.leads.services import lead_for_conversation, lead_stage_set
from apps.tenants.models import Company, CompanyDailyUsage
from tests.channels.conftest import _close_model_clients, assistant_on
from tests.fakes.openai_server import FakeOpenAI

NOW = timedelta(0)


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    settings.OPENAI_API_KEY = ""


@pytest.fixture
def company(alpha: Company) -> Iterator[Company]:
    with tenant_context(alpha):
        yield alpha


def visit(session: str, *texts: str, channel: str = "web", page: str = "") -> Conversation:
    for text in texts:
        message_receive(channel=channel, session_id=session, text=text,
                        context={"page": page} if page else None)  # fmt: skip
    return Conversation.objects.get(channel=channel, session_id=session)


def a_day_of_conversations() -> None:
    """Web and API conversations: one-message visits, engaged ones, a captured lead that
    qualifies and wins, a booked meeting, a handoff, and replies with model usage."""
    visit("w1", "Hola", page="https://shop.example.com/precios?utm_source=ads")
    visit("w2", "Hola", "Quiero un seguro de auto, soy ana@cliente.example",
          page="https://shop.example.com/precios")  # fmt: skip
    visit("w3", "Hola", "¿Tienen oficina?", "Gracias", page="https://shop.example.com/")
    chat = visit("w4", "Hola, mi teléfono es +57 300 123 4567", "Quiero hablar con una persona")
    assert chat.mode == Conversation.Mode.PENDING_HUMAN
    # The API conversation is answered by a model (the local OpenAI-compatible server), with
    # tokens and cost on each reply.
    with FakeOpenAI() as llm:
        assistant_on(connection.tenant, llm)
        visit("a1", "Hello", "I need a quote, call me at +1 415 555 0100", channel="api")
        _close_model_clients()
    profile = assistant_profile_get()
    profile.api_key, profile.api_base_url = "", ""
    profile.save()
    won = lead_for_conversation(visit("w2").pk)
    assert won is not None
    lead_stage_set(lead=won, stage="meeting_booked")
    lead_stage_set(lead=won, stage="won")
    Lead.objects.filter(pk=won.pk).update(qualified_at=timezone.now())
    from apps.analytics.services import event_emit

    event_emit(kind="lead.qualified", conversation_id=None, lead_id=won.pk)
    conversation_handoff_request(conversation=visit("w4"), reason="visitor_asked")  # no-op: twice


def recount() -> dict[str, Any]:
    """The figures counted again from conversations, messages and leads."""
    visitor = Message.objects.filter(role="visitor")
    replies = Message.objects.filter(role="assistant", reply_to__isnull=False,
                                     status__in=["completed", "refused"])  # fmt: skip
    engaged = (
        Conversation.objects.annotate(n=Count("messages", filter=models_q(role="visitor")))
        .filter(n__gte=2)
        .count()
    )
    histogram = [0] * TTFT_BUCKETS
    for ttft in replies.exclude(ttft_ms=None).values_list("ttft_ms", flat=True):
        histogram[ttft_bucket(ttft)] += 1
    usage = replies.aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cost"))
    return {
        "conversations": Conversation.objects.count(),
        "visitor_messages": visitor.count(),
        "replies": replies.count(),
        "engaged": engaged,
        "leads": Lead.objects.exclude(email="", phone="").count(),
        "qualified": Lead.objects.exclude(qualified_at=None).count(),
        "won": Lead.objects.filter(stage="won").count(),
        "meetings": LeadEvent.objects.filter(kind="stage", new="meeting_booked").count(),
        "handoffs": Conversation.objects.exclude(handoff_requested_at=None).count(),
        "unique_visitors": visitor.values("conversation__contact").distinct().count(),
        "ttft_histogram": histogram,
        "input_tokens": usage["i"] or 0,
        "output_tokens": usage["o"] or 0,
        "cost": usage["c"] or Decimal(0),
    }


def models_q(**kwargs: Any) -> Any:
    from django.db.models import Q

    return Q(**{f"messages__{k}": v for k, v in kwargs.items()})


def rolled_up() -> dict[str, Any]:
    totals = HourlyStat.objects.aggregate(
        **{name: Sum(name) for name in ("conversations", "visitor_messages", "replies", "engaged",
                                        "leads", "qualified", "won", "meetings", "handoffs",
                                        "input_tokens", "output_tokens", "cost")}
    )  # fmt: skip
    histogram = [0] * TTFT_BUCKETS
    for row in HourlyStat.objects.values_list("ttft_histogram", flat=True):
        histogram = [a + b for a, b in zip(histogram, row, strict=True)]
    totals["unique_visitors"] = ContactDay.objects.values("contact_id").distinct().count()
    totals["ttft_histogram"] = histogram
    return totals


def test_the_rollup_equals_a_recount_from_the_raw_data(
    company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollup, "BATCH", 7)  # many small batches
    a_day_of_conversations()

    counted = rollup_run(lag=NOW)

    assert counted == Event.objects.count()
    assert RollupState.objects.get().last_event_id == Event.objects.order_by("id").last().pk
    expected = recount()
    assert rolled_up() == expected
    assert expected["conversations"] == 5 and expected["engaged"] == 4 and expected["leads"] == 3
    # Per channel and per page.
    assert dict(HourlyStat.objects.values_list("channel").annotate(n=Sum("conversations"))) == {
        "web": 4, "api": 1,
    }  # fmt: skip
    pages = dict(PageDailyStat.objects.values_list("page").annotate(n=Sum("conversations")))
    assert pages == {"/precios": 2, "/": 1, "": 2}
    replies = Message.objects.filter(conversation__channel="api", role="assistant")
    model = replies.values("model").annotate(i=Sum("input_tokens"), o=Sum("output_tokens"),
                                             c=Sum("cost")).get()  # fmt: skip
    assert model["i"] > 0 and model["c"] > 0
    per_model = ModelDailyStat.objects.filter(model=model["model"])
    assert list(per_model.values_list("input_tokens", "output_tokens", "cost")) == [
        (model["i"], model["o"], model["c"])
    ]


def test_first_response_time_is_the_first_replys_delay_per_conversation(company: Company) -> None:
    a_day_of_conversations()
    rollup_run(lag=NOW)
    firsts = []
    for conversation in Conversation.objects.all():
        first_visitor = conversation.messages.filter(role="visitor").aggregate(t=Min("created_at"))[
            "t"
        ]
        first_reply = conversation.messages.filter(role="assistant").aggregate(t=Min("created_at"))[
            "t"
        ]
        firsts.append((first_reply - first_visitor).total_seconds() * 1000)
    totals = HourlyStat.objects.aggregate(s=Sum("first_response_ms_sum"), n=Sum("first_responses"))
    assert totals["n"] == len(firsts)
    # Events are stamped a few milliseconds from their messages.
    assert totals["s"] / totals["n"] == pytest.approx(sum(firsts) / len(firsts), abs=200)


def test_events_arriving_between_runs_are_counted_once(company: Company) -> None:
    visit("w1", "Hola")
    assert rollup_run(lag=NOW) > 0
    assert rollup_run(lag=NOW) == 0  # nothing new: nothing counted twice
    visit("w1", "¿Qué seguros tienen?")
    visit("w2", "Hola")
    rollup_run(lag=NOW)
    assert rolled_up() == recount()


def test_a_rebuild_from_the_event_log_gives_the_same_figures(company: Company) -> None:
    a_day_of_conversations()
    rollup_run(lag=NOW)
    before = rolled_up()
    assert rollup_rebuild() == Event.objects.count()
    assert rolled_up() == before


def test_young_events_wait_and_an_earlier_id_committed_late_is_not_skipped(
    company: Company,
) -> None:
    visit("w1", "Hola")
    rollup_run(lag=NOW)
    settled_before = RollupState.objects.get().last_event_id
    # An event whose transaction committed late: its id is lower, its time is now; a later
    # id is already old. The rollup must stop at the young one, not skip it.
    young = Event.objects.create(kind="message.received", conversation_id=visit("w1").pk,
                                 channel="web")  # fmt: skip
    old = Event.objects.create(
        kind="agent.message", conversation_id=young.conversation_id, channel="web"
    )
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    assert rollup_batch(lag=timedelta(minutes=1)) == 0
    assert RollupState.objects.get().last_event_id == settled_before
    assert rollup_batch(now=timezone.now() + timedelta(minutes=2), lag=timedelta(minutes=1)) == 2
    assert HourlyStat.objects.aggregate(n=Sum("agent_messages"))["n"] == 1


def test_the_summary_reads_the_rollups_for_a_period_and_channel(company: Company) -> None:
    a_day_of_conversations()
    rollup_run(lag=NOW)
    period, problems = period_parse({})
    summary = analytics_summary(period)

    assert problems == []
    assert summary.totals["conversations"] == 5
    assert summary.unique_visitors == 5
    assert summary.funnel == [
        {"step": "visitors", "count": 5}, {"step": "engaged", "count": 4},
        {"step": "leads", "count": 3}, {"step": "qualified", "count": 1},
        {"step": "won", "count": 1},
    ]  # fmt: skip
    assert summary.rates["handoff"] == pytest.approx(1 / 5)
    assert summary.rates["resolved_by_assistant"] == pytest.approx(4 / 5)
    assert summary.series[-1]["conversations"] == 5
    assert sum(sum(row) for row in summary.heatmap) == 10  # visitor messages
    assert summary.pages[0] == {"page": "/precios", "conversations": 2}
    assert summary.ttft["count"] == summary.totals["replies"] > 0
    histogram = recount()["ttft_histogram"]
    assert summary.ttft["p50"] == percentile(histogram, 0.5)
    assert summary.ttft["p95"] == percentile(histogram, 0.95)
    api, problems = period_parse({"channel": "api", "from": "nope"})
    assert problems == ["from"]
    assert analytics_summary(api).totals["conversations"] == 1
    past, _ = period_parse({"from": "2020-01-01", "to": "2020-01-31"})
    assert analytics_summary(past).totals["conversations"] == 0


def test_the_staffs_usage_per_company_matches_and_stays_apart(
    company: Company, beta: Company
) -> None:
    a_day_of_conversations()
    rollup_run(lag=NOW)
    expected = recount()
    with tenant_context(beta):
        visit("b1", "Hola")
        rollup_run(lag=NOW)
    usage = CompanyDailyUsage.objects.get(company=company)
    assert (usage.conversations, usage.visitor_messages, usage.replies) == (
        expected["conversations"], expected["visitor_messages"], expected["replies"],
    )  # fmt: skip
    assert (usage.input_tokens, usage.cost) == (expected["input_tokens"], expected["cost"])
    assert CompanyDailyUsage.objects.get(company=beta).conversations == 1
    with tenant_context(beta):
        assert HourlyStat.objects.aggregate(n=Sum("conversations"))["n"] == 1


def test_the_rebuild_command_recounts_one_company(company: Company) -> None:
    import io

    from django.core.management import call_command

    visit("w1", "Hola")
    out = io.StringIO()
    call_command("analytics_rebuild", company=company.slug, stdout=out)
    assert (
        out.getvalue().strip()
        == f'{{"company": "{company.slug}", "events": {Event.objects.count()}}}'
    )
    assert rolled_up() == recount()


def test_the_dashboards_test_chat_is_not_traffic(company: Company) -> None:
    visit("t1", "Hola", channel="test")
    visit("w1", "Hola")
    rollup_run(lag=NOW)
    assert HourlyStat.objects.aggregate(n=Sum("conversations"))["n"] == 1
    assert not HourlyStat.objects.filter(channel="test").exists()


def test_a_person_qualifying_a_lead_counts_as_qualified_once(company: Company) -> None:
    lead = lead_for_conversation(visit("w1", "Hola").pk)
    assert lead is not None
    lead_stage_set(lead=lead, stage="qualified")
    lead_stage_set(lead=lead, stage="contacted")
    lead_stage_set(lead=lead, stage="qualified")
    rollup_run(lag=NOW)
    assert HourlyStat.objects.aggregate(n=Sum("qualified"))["n"] == 1
