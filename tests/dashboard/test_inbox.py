"""The sales inbox pages: the leads list (filters, search, sorting, pages), a lead's page and
its changes, the handoff queue and a conversation's page (take, hand back, close, reply), who
may do what, isolation between companies, and constant query counts."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.conversations.models import Contact, Conversation, Message
from apps.leads import selectors
from apps.leads.models import Lead, LeadEvent, Source, Stage
from apps.tenants.models import Company
from tests.conftest import logged_in, member, owner

pytestmark = pytest.mark.django_db

LEADS = "/dashboard/leads/"
INBOX = "/dashboard/inbox/"


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def client_for(company: Company, user: User) -> Client:
    return english(logged_in(company, user))


def make_lead(company: Company, **fields: Any) -> Lead:
    with tenant_context(company):
        return Lead.objects.create(**fields)


_sessions = iter(range(1, 10**6))


def make_conversation(
    company: Company,
    *,
    lead: Lead | None = None,
    mode: str = Conversation.Mode.BOT,
    agent: User | None = None,
    channel: str = "web",
    texts: tuple[tuple[str, str, str], ...] = (),
    requested_minutes_ago: int | None = None,
) -> Conversation:
    """A conversation (its own contact, joined to `lead`) with messages (role, text, status)."""
    n = next(_sessions)
    with tenant_context(company):
        contact = Contact.objects.create(channel=channel, external_id=f"ext-{n}", lead=lead)
        requested = None
        if requested_minutes_ago is not None:
            requested = timezone.now() - timedelta(minutes=requested_minutes_ago)
        conversation = Conversation.objects.create(
            contact=contact,
            channel=channel,
            session_id=f"session-{n}",
            mode=mode,
            agent=agent,
            handoff_requested_at=requested,
            last_message_at=timezone.now(),
        )
        for role, text, status in texts:
            Message.objects.create(
                conversation=conversation, channel=channel, role=role, text=text, status=status
            )
        return conversation


def row_ids(response: Any) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="lead-row" data-lead-id="(\d+)"',
                                       response.content.decode())]  # fmt: skip


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


# --- The leads list ------------------------------------------------------------------------


def test_the_list_shows_each_lead_with_its_columns(alpha: Company) -> None:
    boss = owner(alpha)
    lead = make_lead(alpha, name="Ana Gómez", email="ana@acme.example", phone="+573001112233",
                     company_name="Acme", stage=Stage.QUALIFIED, score=72, owner=boss,
                     source_channel="whatsapp", tags=["vip", "demo"])  # fmt: skip

    response = client_for(alpha, boss).get(LEADS)

    assert response.status_code == 200
    assert row_ids(response) == [lead.pk]
    row = text(response).split('data-testid="lead-row"', 1)[1].split("</tr>", 1)[0]
    for shown in ("Ana Gómez", "ana@acme.example", "+573001112233", "Acme", "Qualified", "72",
                  str(boss), "WhatsApp", "vip", "demo"):  # fmt: skip
        assert shown in row
    assert "1\u20131 of 1 leads" in text(response)


def test_filters_narrow_the_list(alpha: Company) -> None:
    boss = owner(alpha)
    agent = member(alpha, Role.AGENT)
    now = timezone.now()
    a = make_lead(alpha, name="A", stage=Stage.NEW, score=10, source_channel="web", tags=["x"])
    b = make_lead(alpha, name="B", stage=Stage.QUALIFIED, score=60, source_channel="telegram",
                  owner=boss)  # fmt: skip
    c = make_lead(alpha, name="C", stage=Stage.WON, score=90, source_channel="whatsapp",
                  owner=agent, tags=["x", "vip"])  # fmt: skip
    with tenant_context(alpha):
        Lead.objects.filter(pk=a.pk).update(created_at=now - timedelta(days=10),
                                            updated_at=now - timedelta(days=10))  # fmt: skip
        Lead.objects.filter(pk=b.pk).update(created_at=now - timedelta(days=3),
                                            updated_at=now - timedelta(days=1))  # fmt: skip
    client = client_for(alpha, boss)
    today = timezone.localdate()

    def ids(query: str) -> set[int]:
        return set(row_ids(client.get(f"{LEADS}?{query}")))

    assert ids("") == {a.pk, b.pk, c.pk}
    assert ids("stage=new&stage=won") == {a.pk, c.pk}
    assert ids("score_min=50") == {b.pk, c.pk}
    assert ids("score_min=50&score_max=80") == {b.pk}
    assert ids("channel=telegram") == {b.pk}
    assert ids("owner=unassigned") == {a.pk}
    assert ids("owner=mine") == {b.pk}
    assert ids(f"owner={agent.pk}") == {c.pk}
    assert ids("tag=vip") == {c.pk}
    assert ids("tag=x") == {a.pk, c.pk}
    assert ids(f"created_from={today - timedelta(days=5)}") == {b.pk, c.pk}
    assert ids(f"created_to={today - timedelta(days=5)}") == {a.pk}
    assert ids(
        f"updated_from={today - timedelta(days=2)}&updated_to={today - timedelta(days=1)}"
    ) == {b.pk}
    # A value that does not parse is left out (and said), not an error page.
    response = client.get(f"{LEADS}?score_min=lots&created_from=yesterday")
    assert set(row_ids(response)) == {a.pk, b.pk, c.pk}
    assert "Some filters were not valid" in text(response)


def test_search_finds_name_email_phone_and_company(alpha: Company) -> None:
    boss = owner(alpha)
    ana = make_lead(alpha, name="Ana Gómez", email="ana@acme.example", phone="+57 300 111 2233")
    bob = make_lead(alpha, name="Bob", email="bob@globex.example", company_name="Globex SAS")
    make_lead(alpha, name="Carla")
    client = client_for(alpha, boss)

    def found(q: str) -> list[int]:
        return row_ids(client.get(LEADS, {"q": q}))

    assert found("gómez") == [ana.pk]
    assert found("ACME.example") == [ana.pk]
    assert found("300 111") == [ana.pk]
    assert found("3001112233") == [ana.pk]  # digits match a phone written with spaces
    assert found("globex sas") == [bob.pk]
    assert found("nobody") == []


def test_sorting_by_each_column_both_ways(alpha: Company) -> None:
    boss = owner(alpha)
    now = timezone.now()
    x = make_lead(alpha, name="Xavier", score=50)
    y = make_lead(alpha, name="Yolanda", score=90)
    z = make_lead(alpha, name="Ana", score=10)
    with tenant_context(alpha):
        for lead, days in ((x, 1), (y, 3), (z, 2)):
            Lead.objects.filter(pk=lead.pk).update(updated_at=now - timedelta(days=days))
    client = client_for(alpha, boss)

    def order(sort: str) -> list[int]:
        return row_ids(client.get(LEADS, {"sort": sort} if sort else {}))

    assert order("") == [x.pk, z.pk, y.pk]  # most recently updated first
    assert order("updated") == [y.pk, z.pk, x.pk]
    assert order("-score") == [y.pk, x.pk, z.pk]
    assert order("score") == [z.pk, x.pk, y.pk]
    assert order("name") == [z.pk, x.pk, y.pk]
    assert order("-name") == [y.pk, x.pk, z.pk]
    assert order("created") == [x.pk, y.pk, z.pk]
    assert order("-created") == [z.pk, y.pk, x.pk]


def test_pages_follow_each_other_without_repeating_a_lead(alpha: Company) -> None:
    boss = owner(alpha)
    with tenant_context(alpha):
        Lead.objects.bulk_create([Lead(name=f"Lead {i:03d}", score=i % 3) for i in range(57)])
    client = client_for(alpha, boss)

    first = client.get(LEADS, {"sort": "-score"})
    second = client.get(LEADS, {"sort": "-score", "page": "2"})
    third = client.get(LEADS, {"sort": "-score", "page": "3"})

    assert len(row_ids(first)) == 50
    assert len(row_ids(second)) == 7
    assert row_ids(third) == []
    assert len(set(row_ids(first)) | set(row_ids(second))) == 57
    assert "1\u201350 of 57 leads" in text(first)
    assert 'data-testid="page-next"' in text(first)
    assert 'data-testid="page-next"' not in text(second)
    assert "51\u201357 of 57 leads" in text(second)


def test_the_count_stops_at_its_limit(alpha: Company, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selectors, "COUNT_LIMIT", 60)
    with tenant_context(alpha):
        Lead.objects.bulk_create([Lead(name=f"Lead {i}") for i in range(70)])

    response = client_for(alpha, owner(alpha)).get(LEADS)

    assert "1\u201350 of more than 60 leads" in text(response)
    assert 'data-total="61"' in text(response)


def test_the_rows_fragment_is_only_the_results(alpha: Company) -> None:
    lead = make_lead(alpha, name="Ana")

    response = client_for(alpha, owner(alpha)).get(LEADS, {"fragment": "rows"})

    body = text(response)
    assert body.startswith('<section id="lead-results"')
    assert "<html" not in body
    assert row_ids(response) == [lead.pk]
    assert client_for(alpha, owner(alpha)).get(LEADS, {"fragment": "nope"}).status_code == 404


# --- A lead's page ---------------------------------------------------------------------------


def lead_form(lead: Lead, **changes: str) -> dict[str, str]:
    data = {
        "name": lead.name, "email": lead.email, "phone": lead.phone,
        "company_name": lead.company_name, "role": lead.role, "need": lead.need,
        "budget_amount": "" if lead.budget_amount is None else str(lead.budget_amount),
        "budget_currency": lead.budget_currency, "timeline": lead.timeline,
        "timeline_date": lead.timeline_date.isoformat() if lead.timeline_date else "",
        "preferred_channel": lead.preferred_channel, "preferred_time": lead.preferred_time,
    }  # fmt: skip
    data.update(changes)
    return {f"lead-{k}": v for k, v in data.items()}


def test_editing_a_lead_records_each_changed_field_as_set_by_a_team_member(
    alpha: Company,
) -> None:
    boss = owner(alpha)
    sources = {"name": "extractor", "email": "extractor", "role": "model"}
    lead = make_lead(alpha, name="Ana", email="ana@acme.example", role="CTO",
                     field_sources=sources)  # fmt: skip
    client = client_for(alpha, boss)

    response = client.post(
        f"{LEADS}{lead.pk}/fields/",
        lead_form(lead, name="Ana María", budget_amount="5000", budget_currency="usd",
                  timeline="next month", timeline_date="2030-01-15"),
    )  # fmt: skip

    assert response.status_code == 302
    assert response["Location"] == f"{LEADS}{lead.pk}/"
    with tenant_context(alpha):
        lead.refresh_from_db()
        events = {
            e.field: (e.old, e.new, e.source, e.actor_id)
            for e in LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.FIELD)
        }
    assert lead.name == "Ana María"
    assert lead.budget_amount == Decimal("5000.00")
    assert lead.budget_currency == "USD"
    assert lead.timeline_date is not None and lead.timeline_date.isoformat() == "2030-01-15"
    assert events == {
        "name": ("Ana", "Ana María", Source.AGENT, boss.pk),
        "budget": ("", "5000.00 USD", Source.AGENT, boss.pk),
        "timeline": ("", "next month (2030-01-15)", Source.AGENT, boss.pk),
    }
    # Fields left as they were keep their source: the assistant may still improve them.
    assert lead.field_sources["email"] == "extractor"
    assert lead.field_sources["role"] == "model"
    assert lead.field_sources["name"] == Source.AGENT


def test_an_invalid_edit_shows_the_form_again_and_changes_nothing(alpha: Company) -> None:
    lead = make_lead(alpha, name="Ana")

    response = client_for(alpha, owner(alpha)).post(
        f"{LEADS}{lead.pk}/fields/", lead_form(lead, email="not an email", name="Other")
    )

    assert response.status_code == 400
    assert "Enter a valid email address." in text(response)
    with tenant_context(alpha):
        assert Lead.objects.get(pk=lead.pk).name == "Ana"
        assert not LeadEvent.objects.filter(lead=lead).exists()


def test_stage_owner_tags_and_note_each_leave_an_event(alpha: Company) -> None:
    boss = owner(alpha)
    agent = member(alpha, Role.AGENT)
    lead = make_lead(alpha, name="Ana")
    client = client_for(alpha, boss)
    url = f"{LEADS}{lead.pk}/"

    assert client.post(f"{url}stage/", {"stage": "won"}).status_code == 302
    assert client.post(f"{url}owner/", {"owner": str(agent.pk)}).status_code == 302
    assert client.post(f"{url}tags/", {"tags": "VIP, demo,  "}).status_code == 302
    assert client.post(f"{url}note/", {"text": "Called, wants a demo"}).status_code == 302

    with tenant_context(alpha):
        lead.refresh_from_db()
        kinds = list(
            LeadEvent.objects.filter(lead=lead)
            .order_by("id")
            .values_list("kind", "old", "new", "actor_id")
        )
    assert (lead.stage, lead.owner_id, lead.tags) == ("won", agent.pk, ["demo", "vip"])
    assert kinds == [
        ("stage", "new", "won", boss.pk),
        ("owner", "", str(agent), boss.pk),
        ("tags", "", "demo, vip", boss.pk),
        ("note", "", "Called, wants a demo", boss.pk),
    ]
    page = text(client.get(url))
    for shown in ("Stage changed", "Owner changed", "Tags changed", "Called, wants a demo"):
        assert shown in page


def test_an_owner_must_be_a_member_who_works_leads(alpha: Company) -> None:
    viewer = member(alpha, Role.VIEWER)
    lead = make_lead(alpha, name="Ana")

    response = client_for(alpha, owner(alpha)).post(
        f"{LEADS}{lead.pk}/owner/", {"owner": str(viewer.pk)}
    )

    assert response.status_code == 400
    with tenant_context(alpha):
        assert Lead.objects.get(pk=lead.pk).owner_id is None


def test_the_lead_page_shows_score_reasons_timeline_and_every_conversation(
    alpha: Company,
) -> None:
    lead = make_lead(alpha, name="Ana", score=40, score_breakdown={
        "need": {"points": 25, "max": 25, "reason": "need_stated"},
        "budget": {"points": 0, "max": 25, "reason": "budget_unknown"},
    })  # fmt: skip
    web = make_conversation(alpha, lead=lead, channel="web", texts=(
        ("visitor", "Hola, necesito un CRM", "received"),
        ("assistant", "¡Claro! ¿Para cuántas personas?", "completed"),
        ("assistant", "Respuesta descartada", "discarded"),
    ))  # fmt: skip
    whatsapp = make_conversation(alpha, lead=lead, channel="whatsapp", mode="human",
                                 agent=owner(alpha),
                                 texts=(("visitor", "Soy Ana", "received"),))  # fmt: skip
    with tenant_context(alpha):
        LeadEvent.objects.create(lead=lead, kind="field", field="email", old="",
                                 new="ana@acme.example", source="extractor")  # fmt: skip
        LeadEvent.objects.create(lead=lead, kind="handoff", new="requested",
                                 conversation_id=web.pk)  # fmt: skip

    response = client_for(alpha, owner(alpha)).get(f"{LEADS}{lead.pk}/")

    page = text(response)
    assert response.status_code == 200
    assert "Score: 40/100" in page
    assert "25/25" in page and "Said what they need" in page and "No budget yet" in page
    assert "ana@acme.example" in page and "Read from the visitor&#x27;s words" not in page
    assert "Read from the visitor's words" in page
    assert "Asked for a person" in page
    parts = re.findall(r'data-testid="transcript-conversation" data-conversation-id="(\d+)"', page)
    assert parts == [str(web.pk), str(whatsapp.pk)]
    assert "Hola, necesito un CRM" in page and "Soy Ana" in page
    discarded = page.split('data-status="discarded"', 1)[1].split("</li>", 1)[0]
    assert "Respuesta descartada" in discarded and "Not delivered" in discarded
    assert "WhatsApp" in page and "Person" in page


# --- The queue and a conversation ------------------------------------------------------------


def test_the_queue_lists_waiting_oldest_first_then_mine_then_the_team(alpha: Company) -> None:
    boss = owner(alpha)
    agent = member(alpha, Role.AGENT)
    recent = make_conversation(alpha, mode="pending_human", requested_minutes_ago=2)
    oldest = make_conversation(alpha, mode="pending_human", requested_minutes_ago=30)
    mine = make_conversation(alpha, mode="human", agent=agent)
    theirs = make_conversation(alpha, mode="human", agent=boss)
    make_conversation(alpha, mode="bot")

    def section(page: str, name: str) -> list[str]:
        part = page.split(f'id="queue-{name}"', 1)[1].split("</section>", 1)[0]
        return re.findall(r'data-testid="queue-item" data-conversation-id="(\d+)"', part)

    agent_page = text(client_for(alpha, agent).get(INBOX))
    boss_page = text(client_for(alpha, boss).get(INBOX))

    assert section(agent_page, "waiting") == [str(oldest.pk), str(recent.pk)]
    assert "waiting 30\xa0minutes" in agent_page
    assert section(agent_page, "mine") == [str(mine.pk)]
    assert 'id="queue-others"' not in agent_page
    assert section(boss_page, "mine") == [str(theirs.pk)]
    assert section(boss_page, "others") == [str(mine.pk)]


def test_an_agent_takes_replies_hands_back_and_closes(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    lead = make_lead(alpha, name="Ana")
    conversation = make_conversation(alpha, lead=lead, mode="pending_human",
                                     requested_minutes_ago=1)  # fmt: skip
    client = client_for(alpha, agent)
    url = f"{INBOX}conversations/{conversation.pk}/"

    page = text(client.get(url))
    assert 'id="take-button"' in page and 'id="reply-form"' in page

    assert client.post(f"{url}take/").status_code == 302
    with tenant_context(alpha):
        conversation.refresh_from_db()
        lead.refresh_from_db()
    assert (conversation.mode, conversation.agent_id) == ("human", agent.pk)
    assert lead.owner_id == agent.pk  # taking an unassigned lead's conversation assigns it

    response = client.post(f"{url}reply/", {"text": "Hola, soy del equipo"})
    assert response.status_code == 302
    with tenant_context(alpha):
        reply = Message.objects.filter(conversation=conversation, role="agent").get()
    assert (reply.text, reply.author_id, reply.status) == ("Hola, soy del equipo", agent.pk,
                                                           "completed")  # fmt: skip
    assert "Hola, soy del equipo" in text(client.get(url))

    assert client.post(f"{url}release/").status_code == 302
    with tenant_context(alpha):
        conversation.refresh_from_db()
    assert (conversation.mode, conversation.agent_id) == ("bot", None)

    assert client.post(f"{url}close/").status_code == 302
    with tenant_context(alpha):
        conversation.refresh_from_db()
        system = list(
            Message.objects.filter(conversation=conversation, role="system").values_list(
                "text", flat=True
            )
        )
    assert conversation.mode == "closed"
    assert len(system) == 3  # joined, assistant back, closed


def test_replying_to_another_agents_conversation_is_refused_clearly(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    other = member(alpha, Role.AGENT)
    lead = make_lead(alpha, name="Ana", owner=agent)
    conversation = make_conversation(alpha, lead=lead, mode="human", agent=other)
    client = client_for(alpha, agent)
    url = f"{INBOX}conversations/{conversation.pk}/"

    response = client.post(f"{url}reply/", {"text": "Hola"}, HTTP_ACCEPT="application/json")
    plain = client.post(f"{url}reply/", {"text": "Hola"}, follow=True)

    assert response.status_code == 409
    assert response.json() == {
        "ok": False,
        "error": f"{other} has this conversation: your message was not sent. Ask them, or an "
        "owner or admin, to hand it over.",
    }
    assert "your message was not sent" in text(plain)
    with tenant_context(alpha):
        assert not Message.objects.filter(conversation=conversation, role="agent").exists()
        assert Conversation.objects.get(pk=conversation.pk).agent_id == other.pk
    # Nor may the agent close it or hand it back, nor force it.
    assert client.post(f"{url}close/", HTTP_ACCEPT="application/json").status_code == 409
    assert client.post(f"{url}takeover/").status_code == 403
    with tenant_context(alpha):
        assert Conversation.objects.get(pk=conversation.pk).mode == "human"


def test_a_manager_takes_over_from_an_agent(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    boss = owner(alpha)
    conversation = make_conversation(alpha, mode="human", agent=agent)
    client = client_for(alpha, boss)
    url = f"{INBOX}conversations/{conversation.pk}/"

    assert 'id="takeover-button"' in text(client.get(url))
    assert client.post(f"{url}take/", follow=True).status_code == 200  # refused, said
    with tenant_context(alpha):
        assert Conversation.objects.get(pk=conversation.pk).agent_id == agent.pk
    assert client.post(f"{url}takeover/").status_code == 302

    with tenant_context(alpha):
        conversation.refresh_from_db()
    assert (conversation.mode, conversation.agent_id) == ("human", boss.pk)


def test_new_messages_come_as_a_fragment_after_an_id(alpha: Company) -> None:
    conversation = make_conversation(alpha, texts=(("visitor", "uno", "received"),
                                                   ("assistant", "dos", "completed")))  # fmt: skip
    with tenant_context(alpha):
        first = Message.objects.filter(conversation=conversation).order_by("id").first()
    assert first is not None

    response = client_for(alpha, owner(alpha)).get(
        f"{INBOX}conversations/{conversation.pk}/", {"fragment": "messages", "after": str(first.pk)}
    )

    body = text(response)
    assert "dos" in body and "uno" not in body and "<html" not in body


# --- Roles -----------------------------------------------------------------------------


def test_a_viewer_reads_everything_and_changes_nothing(alpha: Company) -> None:
    viewer = member(alpha, Role.VIEWER)
    lead = make_lead(alpha, name="Ana", owner=owner(alpha))
    conversation = make_conversation(alpha, lead=lead, mode="pending_human",
                                     requested_minutes_ago=1)  # fmt: skip
    client = client_for(alpha, viewer)

    assert row_ids(client.get(LEADS)) == [lead.pk]
    lead_page = text(client.get(f"{LEADS}{lead.pk}/"))
    conversation_page = text(client.get(f"{INBOX}conversations/{conversation.pk}/"))
    assert "<form" not in lead_page.split('id="lead-page"', 1)[1]
    assert "<form" not in conversation_page.split('id="conversation-page"', 1)[1]
    assert client.get(INBOX).status_code == 200

    posts = [
        (f"{LEADS}{lead.pk}/fields/", lead_form(lead, name="Changed")),
        (f"{LEADS}{lead.pk}/stage/", {"stage": "won"}),
        (f"{LEADS}{lead.pk}/owner/", {"owner": ""}),
        (f"{LEADS}{lead.pk}/tags/", {"tags": "x"}),
        (f"{LEADS}{lead.pk}/note/", {"text": "x"}),
        (f"{INBOX}conversations/{conversation.pk}/take/", {}),
        (f"{INBOX}conversations/{conversation.pk}/reply/", {"text": "x"}),
        (f"{INBOX}conversations/{conversation.pk}/close/", {}),
        (f"{INBOX}conversations/{conversation.pk}/release/", {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    with tenant_context(alpha):
        lead.refresh_from_db()
        conversation.refresh_from_db()
        assert not LeadEvent.objects.filter(lead=lead).exists()
        assert not Message.objects.filter(conversation=conversation).exists()
    assert (lead.name, lead.stage, lead.tags, lead.owner_id) == ("Ana", "new", [],
                                                                 owner(alpha).pk)  # fmt: skip
    assert conversation.mode == "pending_human"


def test_an_agent_sees_and_works_only_their_own_leads(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    other = member(alpha, Role.AGENT)
    mine = make_lead(alpha, name="Mine", owner=agent)
    theirs = make_lead(alpha, name="Theirs", owner=other)
    nobodys = make_lead(alpha, name="Nobody's")
    their_conversation = make_conversation(alpha, lead=theirs, mode="human", agent=other)
    waiting = make_conversation(alpha, lead=nobodys, mode="pending_human", requested_minutes_ago=1)
    client = client_for(alpha, agent)

    assert row_ids(client.get(LEADS)) == [mine.pk]
    assert row_ids(client.get(LEADS, {"owner": str(other.pk)})) == []  # no way around
    assert client.get(f"{LEADS}{theirs.pk}/").status_code == 404
    assert client.get(f"{LEADS}{nobodys.pk}/").status_code == 404
    assert client.post(f"{LEADS}{theirs.pk}/stage/", {"stage": "won"}).status_code == 404
    assert client.get(f"{INBOX}conversations/{their_conversation.pk}/").status_code == 404
    assert client.post(f"{INBOX}conversations/{their_conversation.pk}/take/").status_code == 404
    assert client.get(f"{INBOX}conversations/{waiting.pk}/").status_code == 200
    # Their own lead: edit, yes; assign to someone else: no (managers do).
    assert client.post(f"{LEADS}{mine.pk}/stage/", {"stage": "contacted"}).status_code == 302
    assert client.post(f"{LEADS}{mine.pk}/owner/", {"owner": str(other.pk)}).status_code == 403
    with tenant_context(alpha):
        assert Lead.objects.get(pk=theirs.pk).stage == "new"
        assert Lead.objects.get(pk=mine.pk).stage == "contacted"
        assert Lead.objects.get(pk=mine.pk).owner_id == agent.pk


def test_signed_out_visitors_are_sent_to_log_in(client_alpha: Client) -> None:
    for url in (LEADS, INBOX, f"{LEADS}1/", f"{INBOX}conversations/1/"):
        response = client_alpha.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


# --- Isolation -------------------------------------------------------------------------


def test_another_companys_leads_and_conversations_are_not_found(
    alpha: Company, beta: Company
) -> None:
    beta_lead = make_lead(beta, name="Beta Secret")
    beta_conversation = make_conversation(beta, lead=beta_lead, mode="pending_human",
                                          requested_minutes_ago=1)  # fmt: skip
    client = client_for(alpha, owner(alpha))

    assert "Beta Secret" not in text(client.get(LEADS))
    assert client.get(f"{LEADS}{beta_lead.pk}/").status_code == 404
    assert client.post(f"{LEADS}{beta_lead.pk}/stage/", {"stage": "won"}).status_code == 404
    assert client.get(f"{INBOX}conversations/{beta_conversation.pk}/").status_code == 404
    assert client.post(f"{INBOX}conversations/{beta_conversation.pk}/take/").status_code == 404
    queue = text(client.get(INBOX, {"fragment": "queue"}))
    assert "Beta Secret" not in queue
    assert f'data-conversation-id="{beta_conversation.pk}"' not in queue
    # Alpha's session means nothing on beta's host.
    alpha_session_on_beta = logged_in(alpha, owner(alpha))
    alpha_session_on_beta.defaults["HTTP_HOST"] = f"{beta.slug}.localhost"
    assert alpha_session_on_beta.get(LEADS).status_code == 302
    with tenant_context(beta):
        assert Lead.objects.get(pk=beta_lead.pk).stage == "new"
        assert Conversation.objects.get(pk=beta_conversation.pk).mode == "pending_human"


# --- Query counts ----------------------------------------------------------------------


def queries(client: Client, url: str, **params: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_list_costs_the_same_queries_for_5_or_50_leads(alpha: Company) -> None:
    boss = owner(alpha)
    agent = member(alpha, Role.AGENT)
    client = client_for(alpha, boss)
    with tenant_context(alpha):
        Lead.objects.bulk_create(
            [Lead(name=f"L{i}", owner=boss if i % 2 else agent, tags=["t"]) for i in range(5)]
        )
    few = queries(client, LEADS)
    few_filtered = queries(client, LEADS, q="L", stage="new", page="1")
    with tenant_context(alpha):
        Lead.objects.bulk_create(
            [Lead(name=f"M{i}", owner=boss if i % 2 else agent, tags=["t"]) for i in range(45)]
        )
    many = queries(client, LEADS)
    many_filtered = queries(client, LEADS, q="L", stage="new", page="1")

    assert few == many
    assert few_filtered == many_filtered
    assert many <= 10


def test_the_lead_page_costs_the_same_queries_for_1_or_10_conversations(alpha: Company) -> None:
    boss = owner(alpha)
    client = client_for(alpha, boss)
    one = make_lead(alpha, name="One", owner=boss)
    ten = make_lead(alpha, name="Ten", owner=boss)
    texts = (("visitor", "hola", "received"), ("agent", "hola", "completed"))
    make_conversation(alpha, lead=one, agent=boss, mode="human", texts=texts)
    for i in range(10):
        make_conversation(alpha, lead=ten, agent=boss if i % 2 else None, texts=texts)
    with tenant_context(alpha):
        Message.objects.filter(role="agent").update(author=boss)
        for lead in (one, ten):
            for kind in ("note", "stage", "owner"):
                LeadEvent.objects.create(lead=lead, kind=kind, new="x", actor=boss)

    assert queries(client, f"{LEADS}{one.pk}/") == queries(client, f"{LEADS}{ten.pk}/")
    assert queries(client, f"{LEADS}{one.pk}/", fragment="live") == queries(
        client, f"{LEADS}{ten.pk}/", fragment="live"
    )
