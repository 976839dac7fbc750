"""CSV exports of leads and conversation transcripts: exact content, spreadsheet-safe cells,
streamed in chunks (also under ASGI), the list's filters, roles and isolation."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncRequestFactory, Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.conversations.models import Contact, Conversation, Message
from apps.leads import exports
from apps.leads.models import Lead
from apps.tenants.models import Company
from tests.conftest import logged_in, member, owner

pytestmark = pytest.mark.django_db

LEADS_CSV = "/dashboard/leads/export.csv"
CONVERSATIONS_CSV = "/dashboard/leads/conversations.csv"
WHEN = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
LEAD_HEADER = (
    "ID,Name,Email,Phone,Company,Role,Need,Stage,Score,Owner,Channel,Tags,Budget,Currency,"
    "Timeline,Timeline date,Preferred channel,Preferred time,Created,Updated\r\n"
)


def client_for(company: Company, user: User) -> Client:
    client = logged_in(company, user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def make_lead(company: Company, **fields: object) -> Lead:
    with tenant_context(company):
        lead = Lead.objects.create(**fields)
        Lead.objects.filter(pk=lead.pk).update(created_at=WHEN, updated_at=WHEN)
        return lead


def body(response: object) -> bytes:
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def rows(response: object) -> list[list[str]]:
    text = body(response).decode("utf-8").removeprefix("\ufeff")
    return list(csv.reader(io.StringIO(text)))


def test_the_leads_export_is_exact_with_a_bom_and_a_total(alpha: Company) -> None:
    boss = owner(alpha)
    lead = make_lead(alpha, name="Ana Gómez", email="ana@acme.example", phone="573001112233",
                     company_name="Acme, Inc.", role="CTO", need='Un CRM "simple"\ny rápido',
                     stage="qualified", score=72, owner=boss, source_channel="web",
                     tags=["demo", "vip"], budget_amount=Decimal("5000.00"),
                     budget_currency="USD", timeline="marzo",
                     timeline_date=datetime(2026, 3, 31).date(), preferred_channel="whatsapp",
                     preferred_time="por la tarde")  # fmt: skip

    response = client_for(alpha, boss).get(LEADS_CSV)

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["X-Total-Count"] == "1"
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    assert body(response).decode("utf-8") == (
        "\ufeff" + LEAD_HEADER
        + f'{lead.pk},Ana Gómez,ana@acme.example,573001112233,"Acme, Inc.",CTO,'
        '"Un CRM ""simple""\ny rápido",qualified,72,owner@alpha.example.com,web,"demo, vip",'
        "5000.00,USD,marzo,2026-03-31,whatsapp,por la tarde,2026-03-04T15:30:00+00:00,"
        "2026-03-04T15:30:00+00:00\r\n"
    )  # fmt: skip


def test_cells_a_spreadsheet_would_evaluate_are_escaped(alpha: Company) -> None:
    make_lead(alpha, name='=HYPERLINK("http://evil.example")',
              company_name="+1+cmd|' /C calc'!A0", role="-2+3", need="@SUM(A1:A2)",
              phone="+57 300 111 2233", tags=["=x"])  # fmt: skip

    (_header, row) = rows(client_for(alpha, owner(alpha)).get(LEADS_CSV))

    assert row[1] == '\'=HYPERLINK("http://evil.example")'
    assert row[3] == "'+57 300 111 2233"
    assert row[4] == "'+1+cmd|' /C calc'!A0"
    assert row[5] == "'-2+3"
    assert row[6] == "'@SUM(A1:A2)"
    assert row[11] == "'=x"
    assert exports.csv_safe("\tcmd") == "'\tcmd"
    assert exports.csv_safe("plain") == "plain"
    assert exports.csv_safe(None) == ""


def test_the_export_streams_in_chunks_and_follows_the_filters(
    alpha: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "CHUNK", 3)
    won = [make_lead(alpha, name=f"Won {i}", stage="won") for i in range(7)]
    make_lead(alpha, name="Lost", stage="lost")

    response = client_for(alpha, owner(alpha)).get(LEADS_CSV, {"stage": "won", "sort": "name"})
    parts = list(response.streaming_content)  # type: ignore[attr-defined]

    assert response["X-Total-Count"] == "7"
    assert len(parts) == 1 + 3  # the header, then chunks of 3, 3 and 1 leads
    table = list(csv.reader(io.StringIO(b"".join(parts).decode().removeprefix("\ufeff"))))
    assert [int(r[0]) for r in table[1:]] == [lead.pk for lead in won]


def test_under_asgi_the_export_is_an_async_stream_of_chunks(
    alpha: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An ASGI server reads a sync iterator whole before sending a byte: under ASGI the
    # content must be an async iterator. (Through the whole ASGI app the request would run
    # on another thread, outside this test's transaction: the response is built directly.)
    monkeypatch.setattr(exports, "CHUNK", 2)
    leads = [make_lead(alpha, name=f"Lead {i}") for i in range(5)]
    request = AsyncRequestFactory().get(LEADS_CSV)
    request.tenant = alpha  # type: ignore[attr-defined]
    with tenant_context(alpha):
        response = exports.leads_csv(request=request, leads=Lead.objects.all())

    async def read() -> list[bytes]:
        return [part async for part in response.streaming_content]  # type: ignore[union-attr]

    assert response.is_async
    assert response["X-Total-Count"] == "5"
    parts = async_to_sync(read)()
    assert len(parts) == 1 + 3  # the header, then chunks of 2, 2 and 1 leads
    text = b"".join(parts).decode().removeprefix("\ufeff")
    assert [int(r[0]) for r in list(csv.reader(io.StringIO(text)))[1:]] == [x.pk for x in leads]


def test_the_conversations_export_has_one_row_per_message(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT, email="agent@alpha.example.com")
    lead = make_lead(alpha, name="Ana", owner=agent)
    with tenant_context(alpha):
        contact = Contact.objects.create(channel="whatsapp", external_id="573001112233",
                                         name="Ana", lead=lead)  # fmt: skip
        conversation = Conversation.objects.create(contact=contact, channel="whatsapp",
                                                   session_id="573001112233")  # fmt: skip
        texts = [("visitor", "received", "Hola", None), ("assistant", "discarded", "=1+1", None),
                 ("agent", "completed", "Soy Bea, del equipo", agent)]  # fmt: skip
        ids = []
        for role, status, text, author in texts:
            message = Message.objects.create(
                conversation=conversation, channel="whatsapp", role=role, status=status,
                text=text, author=author,
            )  # fmt: skip
            Message.objects.filter(pk=message.pk).update(created_at=WHEN)
            ids.append(message.pk)
        Conversation.objects.create(
            contact=Contact.objects.create(channel="web", external_id="other"),
            channel="web", session_id="no-lead-session",
        )  # fmt: skip

    response = client_for(alpha, agent).get(CONVERSATIONS_CSV)

    assert response["X-Total-Count"] == "3"
    stamp = "2026-03-04T15:30:00+00:00"
    c = conversation.pk
    assert body(response).decode() == (
        "\ufeffConversation,Channel,Lead,Contact,Message,Role,Author,Status,Text,Time\r\n"
        f"{c},whatsapp,{lead.pk},Ana,{ids[0]},visitor,,received,Hola,{stamp}\r\n"
        f"{c},whatsapp,{lead.pk},Ana,{ids[1]},assistant,,discarded,'=1+1,{stamp}\r\n"
        f"{c},whatsapp,{lead.pk},Ana,{ids[2]},agent,agent@alpha.example.com,completed,"
        f'"Soy Bea, del equipo",{stamp}\r\n'
    )


def test_an_agent_exports_only_their_leads_and_a_viewer_may_export(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    viewer = member(alpha, Role.VIEWER)
    mine = make_lead(alpha, name="Mine", owner=agent)
    make_lead(alpha, name="Theirs", owner=owner(alpha))
    make_lead(alpha, name="Nobody's")

    agent_rows = rows(client_for(alpha, agent).get(LEADS_CSV))
    viewer_rows = rows(client_for(alpha, viewer).get(LEADS_CSV))

    assert [r[1] for r in agent_rows[1:]] == ["Mine"]
    assert int(agent_rows[1][0]) == mine.pk
    assert sorted(r[1] for r in viewer_rows[1:]) == ["Mine", "Nobody's", "Theirs"]


def test_exports_need_a_member_and_never_cross_companies(
    alpha: Company, beta: Company, client_alpha: Client
) -> None:
    make_lead(alpha, name="Alpha lead")
    make_lead(beta, name="Beta secret")
    with tenant_context(beta):
        contact = Contact.objects.create(channel="web", external_id="beta-visitor")
        conversation = Conversation.objects.create(contact=contact, channel="web",
                                                   session_id="beta-session")  # fmt: skip
        Message.objects.create(conversation=conversation, channel="web", role="visitor",
                               status="received", text="beta words")  # fmt: skip

    anonymous = client_alpha.get(LEADS_CSV)
    leads = body(client_for(alpha, owner(alpha)).get(LEADS_CSV)).decode()
    transcripts = body(client_for(alpha, owner(alpha)).get(CONVERSATIONS_CSV)).decode()

    assert anonymous.status_code == 302
    assert "Alpha lead" in leads and "Beta secret" not in leads
    assert "beta words" not in transcripts
