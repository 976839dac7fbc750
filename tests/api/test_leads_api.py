"""REST API v1 for leads (`apps.leads.api`): list with filters and cursor pages, read one,
update stage/owner/notes, scopes, errors, isolation between companies, query count and the
OpenAPI description. In-process through Django's test client on the public host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.api.services import api_key_create, api_key_revoke, api_token_issue
from apps.audit.services import SYSTEM
from apps.conversations.models import Channel, Contact, Conversation
from apps.leads.models import Lead, LeadEvent, Stage
from apps.tenants.models import Company
from tests.conftest import member, owner

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
STAGES = "new, qualified, contacted, meeting_booked, won, lost"
UNKNOWN_FIELDS = "Only stage, owner and notes can be changed."


def error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return {"error": body}


@pytest.fixture
def api(db: None) -> Client:
    # English explanations: the API follows Accept-Language like the rest of the product.
    return Client(HTTP_HOST=settings.ROOT_DOMAIN, HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def keys(alpha: Company, beta: Company) -> dict[str, str]:
    """API keys by name: alpha's read, chat, read+write, write-only and revoked ones, and
    beta's read+write key."""
    issued = {
        "read": api_key_create(company=alpha, name="read", scopes=["read"]),
        "chat": api_key_create(company=alpha, name="chat", scopes=["chat"]),
        "write": api_key_create(company=alpha, name="write", scopes=["read", "write"]),
        "write_only": api_key_create(company=alpha, name="write only", scopes=["write"]),
        "revoked": api_key_create(company=alpha, name="revoked", scopes=["read", "write"]),
        "beta": api_key_create(company=beta, name="beta", scopes=["read", "write"]),
    }
    api_key_revoke(api_key=issued["revoked"].api_key, actor=SYSTEM)
    return {name: item.key for name, item in issued.items()}


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def get(api: Client, path: str, key: str | None, **params: Any) -> Any:
    return api.get(path, params, headers=auth(key))


def patch(api: Client, path: str, key: str | None, body: Any) -> Any:
    return api.patch(path, json.dumps(body), content_type="application/json", headers=auth(key))


def lead_make(company: Company, *, updated_at: datetime | None = None, **fields: Any) -> Lead:
    with tenant_context(company):
        lead = Lead.objects.create(**fields)
        if updated_at is not None:
            Lead.objects.filter(pk=lead.pk).update(updated_at=updated_at)
            lead.refresh_from_db()
        return lead


def conversation_make(company: Company, contact: Contact, session: str) -> Conversation:
    with tenant_context(company):
        return Conversation.objects.create(
            contact=contact, channel=contact.channel, session_id=session
        )


def contact_make(company: Company, lead: Lead | None, external_id: str, channel: str) -> Contact:
    with tenant_context(company):
        return Contact.objects.create(channel=channel, external_id=external_id, lead=lead)


def lead_row(company: Company, pk: int) -> dict[str, Any]:
    with tenant_context(company):
        return dict(Lead.objects.filter(pk=pk).values().get())


def events(company: Company, lead: Lead) -> list[tuple[str, str, str, str, int | None]]:
    with tenant_context(company):
        return list(
            LeadEvent.objects.filter(lead=lead)
            .order_by("id")
            .values_list("kind", "field", "old", "new", "actor_id")
        )


def ids(response: Any) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


# -- reading one lead ---------------------------------------------------------------------------


def test_a_lead_is_read_with_every_field(api: Client, keys: dict[str, str], alpha: Company) -> None:
    seller = member(alpha, Role.AGENT, email="seller@alpha.example.com")
    lead = lead_make(
        alpha,
        name="Ana Pérez",
        email="ana@example.com",
        phone="+5215512345678",
        company_name="Ferretería Pérez",
        role="Dueña",
        need="Un asistente para WhatsApp",
        budget_amount=Decimal("1500"),
        budget_currency="USD",
        timeline="el próximo mes",
        timeline_date=date(2025, 7, 1),
        preferred_channel="whatsapp",
        preferred_time="por la mañana",
        source_channel="web",
        first_page="https://shop.example.com/precios",
        context={"utm_source": "google", "referrer": "https://google.com/"},
        stage=Stage.QUALIFIED,
        owner=seller,
        tags=["vip", "wholesale"],
        notes="Call after 10am.",
        score=73,
        # Stored in another order than the parts': the API answers in the parts' order.
        score_breakdown={
            "engagement": {"points": 7.5, "max": 15, "reason": "engagement_contact"},
            "need": {"points": 25.0, "max": 25, "reason": "need_stated"},
            "budget": {"points": 25.0, "max": 25, "reason": "budget_stated"},
            "authority": {"points": 15.0, "max": 15, "reason": "authority_decider"},
            "timeline": {"points": 0.0, "max": 20, "reason": "timeline_unknown"},
        },
        field_sources={"email": "extractor", "need": "model", "name": "visitor"},
        qualified_at=datetime(2025, 6, 2, 15, 4, 5, tzinfo=UTC),
        booking_kind="demo",
        booking_at=datetime(2025, 6, 5, 16, 0, tzinfo=UTC),
        booking_link="https://cal.example.com/ana",
    )
    web = contact_make(alpha, lead, "web-ana", Channel.WEB)
    whatsapp = contact_make(alpha, lead, "+5215512345678", Channel.WHATSAPP)
    first = conversation_make(alpha, web, "s-ana-1")
    second = conversation_make(alpha, web, "s-ana-2")
    third = conversation_make(alpha, whatsapp, "wa-ana")
    other = lead_make(alpha, name="Someone else")
    conversation_make(alpha, contact_make(alpha, other, "web-else", Channel.WEB), "s-else")
    with tenant_context(alpha):
        Lead.objects.filter(pk=lead.pk).update(
            created_at=datetime(2025, 6, 2, 14, 0, tzinfo=UTC),
            updated_at=datetime(2025, 6, 2, 15, 30, 0, 250000, tzinfo=UTC),
        )

    response = get(api, f"/v1/leads/{lead.pk}", keys["read"])

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": lead.pk,
        "name": "Ana Pérez",
        "email": "ana@example.com",
        "phone": "+5215512345678",
        "company_name": "Ferretería Pérez",
        "role": "Dueña",
        "need": "Un asistente para WhatsApp",
        "budget": {"amount": "1500.00", "currency": "USD"},
        "timeline": {"text": "el próximo mes", "date": "2025-07-01"},
        "preferred_channel": "whatsapp",
        "preferred_time": "por la mañana",
        "source_channel": "web",
        "first_page": "https://shop.example.com/precios",
        "context": {"utm_source": "google", "referrer": "https://google.com/"},
        "stage": "qualified",
        "owner": {"id": seller.pk, "email": "seller@alpha.example.com", "name": "Agent Member"},
        "tags": ["vip", "wholesale"],
        "notes": "Call after 10am.",
        "score": 73,
        "score_breakdown": [
            {
                "part": "need",
                "points": 25.0,
                "max": 25,
                "reason": "need_stated",
                "explanation": "Said what they need",
            },
            {
                "part": "budget",
                "points": 25.0,
                "max": 25,
                "reason": "budget_stated",
                "explanation": "Gave a budget",
            },
            {
                "part": "authority",
                "points": 15.0,
                "max": 15,
                "reason": "authority_decider",
                "explanation": "Decides the purchase (role)",
            },
            {
                "part": "timeline",
                "points": 0.0,
                "max": 20,
                "reason": "timeline_unknown",
                "explanation": "No timeline yet",
            },
            {
                "part": "engagement",
                "points": 7.5,
                "max": 15,
                "reason": "engagement_contact",
                "explanation": "Left contact details",
            },
        ],
        "field_sources": {"email": "extractor", "need": "model", "name": "visitor"},
        "qualified_at": "2025-06-02T15:04:05Z",
        "booking": {
            "kind": "demo",
            "at": "2025-06-05T16:00:00Z",
            "link": "https://cal.example.com/ana",
        },
        "conversation_ids": [first.pk, second.pk, third.pk],
        "created_at": "2025-06-02T14:00:00Z",
        "updated_at": "2025-06-02T15:30:00.250000Z",
    }


def test_an_empty_lead_reads_with_nulls_and_empty_values(
    api: Client, keys: dict[str, str], alpha: Company
) -> None:
    lead = lead_make(alpha)

    body = get(api, f"/v1/leads/{lead.pk}", keys["read"]).json()

    assert body["budget"] is None
    assert body["owner"] is None
    assert body["booking"] is None
    assert body["timeline"] == {"text": "", "date": None}
    assert body["score_breakdown"] == []
    assert body["conversation_ids"] == []
    assert body["stage"] == "new"
    assert body["qualified_at"] is None
    assert (body["tags"], body["context"], body["field_sources"]) == ([], {}, {})


@pytest.mark.parametrize("pk", ["999999999", "99999999999999999999999"])
def test_an_unknown_lead_answers_404(
    api: Client, keys: dict[str, str], alpha: Company, pk: str
) -> None:
    read = get(api, f"/v1/leads/{pk}", keys["read"])
    write = patch(api, f"/v1/leads/{pk}", keys["write"], {"stage": "won"})

    assert read.status_code == 404
    assert read.json() == error("not_found", "Not found.")
    assert write.status_code == 404
    assert write.json() == error("not_found", "Not found.")


# -- listing ------------------------------------------------------------------------------------


def test_leads_are_listed_most_recently_updated_first_through_every_page(
    api: Client, keys: dict[str, str], alpha: Company
) -> None:
    made = [lead_make(alpha, name=f"L{i}", updated_at=T0 + timedelta(minutes=i)) for i in range(5)]
    # Two more updated at the same instant as L2: ties are broken by id, highest first.
    made += [lead_make(alpha, name=f"T{i}", updated_at=T0 + timedelta(minutes=2)) for i in (1, 2)]
    expected = [
        made[4].pk, made[3].pk, made[6].pk, made[5].pk, made[2].pk, made[1].pk, made[0].pk,
    ]  # fmt: skip

    pages = []
    response = get(api, "/v1/leads", keys["read"], page_size=3)
    while True:
        assert response.status_code == 200, response.content
        pages.append(ids(response))
        next_url = response.json()["next"]
        if next_url is None:
            break
        response = api.get(next_url, headers=auth(keys["read"]))

    assert pages == [expected[:3], expected[3:6], expected[6:]]
    assert set(response.json()) == {"next", "previous", "results"}


def test_the_page_size_is_25_by_default_and_at_most_100(
    api: Client, keys: dict[str, str], alpha: Company
) -> None:
    with tenant_context(alpha):
        Lead.objects.bulk_create([Lead(name=f"Bulk {i}") for i in range(105)])

    default = get(api, "/v1/leads", keys["read"])
    huge = get(api, "/v1/leads", keys["read"], page_size=500)
    nonsense = get(api, "/v1/leads", keys["read"], page_size="lots")

    assert len(default.json()["results"]) == 25
    assert len(huge.json()["results"]) == 100
    assert huge.json()["next"] is not None
    assert len(nonsense.json()["results"]) == 25


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"stage": "won"}, ["won"]),
        ({"stage": ["won", "lost"]}, ["won", "lost"]),
        ({"stage": "won,lost"}, ["won", "lost"]),
        ({"stage": " won , qualified "}, ["won", "qualified"]),
        ({}, ["won", "lost", "qualified", "new"]),
    ],
)
def test_leads_are_filtered_by_stage(
    api: Client, keys: dict[str, str], alpha: Company, query: dict[str, Any], expected: list[str]
) -> None:
    order = ["new", "qualified", "lost", "won"]  # oldest first
    made = {
        stage: lead_make(alpha, stage=stage, updated_at=T0 + timedelta(minutes=i))
        for i, stage in enumerate(order)
    }

    response = get(api, "/v1/leads", keys["read"], **query)

    assert response.status_code == 200, response.content
    assert ids(response) == [made[stage].pk for stage in expected]


@pytest.mark.parametrize(
    ("min_score", "expected"),
    [("0", [100, 60, 59, 0]), ("59", [100, 60, 59]), ("60", [100, 60]), ("100", [100])],
)
def test_leads_are_filtered_by_minimum_score(
    api: Client, keys: dict[str, str], alpha: Company, min_score: str, expected: list[int]
) -> None:
    made = {
        score: lead_make(alpha, score=score, updated_at=T0 + timedelta(minutes=i))
        for i, score in enumerate([0, 59, 60, 100])
    }

    response = get(api, "/v1/leads", keys["read"], min_score=min_score)

    assert response.status_code == 200, response.content
    assert ids(response) == [made[score].pk for score in expected]


@pytest.mark.parametrize(
    "since",
    ["2025-06-02T12:10:00Z", "2025-06-02T14:10:00+02:00", "2025-06-02T12:10:00"],
)
def test_leads_are_filtered_by_updated_since(
    api: Client, keys: dict[str, str], alpha: Company, since: str
) -> None:
    before = lead_make(alpha, updated_at=T0 + timedelta(minutes=9, seconds=59))
    at = lead_make(alpha, updated_at=T0 + timedelta(minutes=10))
    after = lead_make(alpha, updated_at=T0 + timedelta(hours=3))

    response = get(api, "/v1/leads", keys["read"], updated_since=since)

    assert response.status_code == 200, response.content
    assert ids(response) == [after.pk, at.pk]
    assert before.pk not in ids(response)


def test_a_date_alone_as_updated_since_means_midnight_utc(
    api: Client, keys: dict[str, str], alpha: Company
) -> None:
    lead_make(alpha, updated_at=datetime(2025, 6, 1, 23, 59, 59, tzinfo=UTC))
    midnight = lead_make(alpha, updated_at=datetime(2025, 6, 2, 0, 0, tzinfo=UTC))

    response = get(api, "/v1/leads", keys["read"], updated_since="2025-06-02")

    assert ids(response) == [midnight.pk]


def test_filters_combine(api: Client, keys: dict[str, str], alpha: Company) -> None:
    lead_make(alpha, stage="won", score=90, updated_at=T0 - timedelta(days=1))
    lead_make(alpha, stage="won", score=10, updated_at=T0 + timedelta(days=1))
    lead_make(alpha, stage="new", score=90, updated_at=T0 + timedelta(days=1))
    match = lead_make(alpha, stage="won", score=90, updated_at=T0 + timedelta(days=1))

    response = get(
        api, "/v1/leads", keys["read"], stage="won", min_score="50", updated_since=T0.isoformat()
    )

    assert ids(response) == [match.pk]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"stage": "closed"}, "stage", f"use one of {STAGES}."),
        ({"stage": ["won", "maybe"]}, "stage", f"use one of {STAGES}."),
        ({"stage": "won,"}, None, None),  # a trailing comma is harmless
        ({"stage": ""}, "stage", f"use one of {STAGES}."),
        ({"stage": "\x00"}, "stage", f"use one of {STAGES}."),
        ({"min_score": "abc"}, "min_score", "a whole number from 0 to 100."),
        ({"min_score": "-1"}, "min_score", "a whole number from 0 to 100."),
        ({"min_score": "101"}, "min_score", "a whole number from 0 to 100."),
        ({"min_score": "5.5"}, "min_score", "a whole number from 0 to 100."),
        ({"min_score": ""}, "min_score", "a whole number from 0 to 100."),
        ({"min_score": "99999999999999999999"}, "min_score", "a whole number from 0 to 100."),
        ({"updated_since": "ayer"}, "updated_since", "use an ISO 8601 date-time."),
        ({"updated_since": "2025-02-30T10:00:00Z"}, "updated_since", "use an ISO 8601 date-time."),
    ],
)
def test_an_invalid_filter_answers_400_naming_it(
    api: Client,
    keys: dict[str, str],
    alpha: Company,
    query: dict[str, Any],
    field: str | None,
    message: str | None,
) -> None:
    response = get(api, "/v1/leads", keys["read"], **query)

    if field is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.content
    assert response.json() == error("invalid_request", f"{field}: {message}", field)


def test_an_invalid_cursor_is_a_client_error(api: Client, keys: dict[str, str]) -> None:
    response = get(api, "/v1/leads", keys["read"], cursor="not-a-cursor")

    assert response.status_code == 404
    assert response.json() == error("not_found", "Not found.")


def test_the_list_makes_the_same_number_of_queries_for_1_or_30_leads(
    api: Client, keys: dict[str, str], alpha: Company
) -> None:
    seller = member(alpha, Role.AGENT)

    def lead_with_conversations(i: int) -> None:
        lead = lead_make(alpha, name=f"N{i}", owner=seller, score_breakdown={"need": {}})
        contact = contact_make(alpha, lead, f"web-n{i}", Channel.WEB)
        conversation_make(alpha, contact, f"s-n{i}-a")
        conversation_make(alpha, contact, f"s-n{i}-b")

    def count() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            response = get(api, "/v1/leads", keys["read"], page_size=50)
        assert response.status_code == 200
        return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET ")]

    get(api, "/v1/leads", keys["read"])  # the key's last-used time is written once a minute
    lead_with_conversations(0)
    one = count()
    for i in range(1, 30):
        lead_with_conversations(i)
    thirty = count()
    listed = get(api, "/v1/leads", keys["read"], page_size=50).json()["results"]

    # The host's domain, the API key, then the leads with owners and conversation ids.
    assert len(one) == len(thirty) == 3
    assert ['"leads_lead"' in sql for sql in thirty] == [False, False, True]
    assert len(listed) == 30
    assert all(len(item["conversation_ids"]) == 2 for item in listed)
    assert all(item["owner"]["id"] == seller.pk for item in listed)


# -- updating -----------------------------------------------------------------------------------


@pytest.fixture
def lead(alpha: Company) -> Lead:
    return lead_make(alpha, name="Ana", notes="first call", updated_at=T0)


def test_patch_moves_the_stage_and_records_it(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    response = patch(api, f"/v1/leads/{lead.pk}", keys["write"], {"stage": "qualified"})

    assert response.status_code == 200, response.content
    body = response.json()
    row = lead_row(alpha, lead.pk)
    assert body["stage"] == "qualified"
    assert row["stage"] == "qualified"
    assert row["qualified_at"] is not None
    assert body["qualified_at"] == row["qualified_at"].isoformat().replace("+00:00", "Z")
    assert row["updated_at"] > T0
    assert events(alpha, lead) == [("stage", "stage", "new", "qualified", None)]
    assert body == get(api, f"/v1/leads/{lead.pk}", keys["read"]).json()


@pytest.mark.parametrize("by", ["email", "EMAIL", "id"])
def test_patch_assigns_an_owner_by_email_or_id(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead, by: str
) -> None:
    seller = member(alpha, Role.AGENT, email="seller@alpha.example.com")
    reference: Any = {"email": seller.email, "EMAIL": seller.email.upper(), "id": seller.pk}[by]

    response = patch(api, f"/v1/leads/{lead.pk}", keys["write"], {"owner": reference})

    assert response.status_code == 200, response.content
    assert response.json()["owner"] == {
        "id": seller.pk,
        "email": "seller@alpha.example.com",
        "name": "Agent Member",
    }
    assert lead_row(alpha, lead.pk)["owner_id"] == seller.pk
    assert events(alpha, lead) == [("owner", "owner", "", "Agent Member", None)]


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.AGENT])
def test_any_member_but_a_viewer_can_own_a_lead(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead, role: str
) -> None:
    person = member(alpha, role)

    response = patch(api, f"/v1/leads/{lead.pk}", keys["write"], {"owner": person.pk})

    assert response.status_code == 200, response.content
    assert lead_row(alpha, lead.pk)["owner_id"] == person.pk


def test_patch_with_a_null_owner_unassigns_the_lead(
    api: Client, keys: dict[str, str], alpha: Company
) -> None:
    seller = member(alpha, Role.AGENT)
    assigned = lead_make(alpha, owner=seller)

    response = patch(api, f"/v1/leads/{assigned.pk}", keys["write"], {"owner": None})

    assert response.status_code == 200, response.content
    assert response.json()["owner"] is None
    assert lead_row(alpha, assigned.pk)["owner_id"] is None
    assert events(alpha, assigned) == [("owner", "owner", "Agent Member", "", None)]


def test_patch_replaces_the_notes_and_records_them(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    response = patch(api, f"/v1/leads/{lead.pk}", keys["write"], {"notes": "  Budget OK.\n"})

    assert response.status_code == 200, response.content
    assert response.json()["notes"] == "Budget OK."
    assert lead_row(alpha, lead.pk)["notes"] == "Budget OK."
    assert events(alpha, lead) == [("note", "notes", "first call", "Budget OK.", None)]


def test_patch_can_clear_the_notes(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    response = patch(api, f"/v1/leads/{lead.pk}", keys["write"], {"notes": ""})

    assert response.status_code == 200, response.content
    assert lead_row(alpha, lead.pk)["notes"] == ""
    assert events(alpha, lead) == [("note", "notes", "first call", "", None)]


def test_patch_changes_every_field_sent_at_once(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    seller = member(alpha, Role.ADMIN, email="boss@alpha.example.com")

    response = patch(
        api,
        f"/v1/leads/{lead.pk}",
        keys["write"],
        {"stage": "contacted", "owner": "boss@alpha.example.com", "notes": "Call Monday"},
    )

    assert response.status_code == 200, response.content
    row = lead_row(alpha, lead.pk)
    assert (row["stage"], row["owner_id"], row["notes"]) == ("contacted", seller.pk, "Call Monday")
    assert events(alpha, lead) == [
        ("owner", "owner", "", "Admin Member", None),
        ("stage", "stage", "new", "contacted", None),
        ("note", "notes", "first call", "Call Monday", None),
    ]


def test_patch_with_the_current_values_records_nothing(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    response = patch(
        api, f"/v1/leads/{lead.pk}", keys["write"], {"stage": "new", "notes": "first call"}
    )

    assert response.status_code == 200, response.content
    assert lead_row(alpha, lead.pk)["updated_at"] == T0
    assert events(alpha, lead) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"stage": "closed"}, error("invalid_request", f"stage: use one of {STAGES}.", "stage")),
        ({"stage": None}, error("invalid_request", "stage: This field may not be null.", "stage")),
        (
            {"stage": "won", "owner": "nobody@alpha.example.com"},
            error(
                "invalid_request",
                "owner: no active team member of this company has that email or id.",
                "owner",
            ),
        ),
        (
            {"owner": 987654321},
            error(
                "invalid_request",
                "owner: no active team member of this company has that email or id.",
                "owner",
            ),
        ),
        (
            {"owner": "not an email"},
            error("invalid_request", "owner: Use the owner's email or user id, or null.", "owner"),
        ),
        (
            {"owner": True},
            error("invalid_request", "owner: Use the owner's email or user id, or null.", "owner"),
        ),
        (
            {"owner": 10**30},
            error("invalid_request", "owner: Use the owner's email or user id, or null.", "owner"),
        ),
        (
            {"owner": ["x@y.z"]},
            error("invalid_request", "owner: Use the owner's email or user id, or null.", "owner"),
        ),
        ({"notes": None}, error("invalid_request", "notes: This field may not be null.", "notes")),
        ({"notes": 5}, error("invalid_request", "notes: Not a valid string.", "notes")),
        (
            {"notes": "a\x00b"},
            error("invalid_request", "notes: Null characters are not allowed.", "notes"),
        ),
        (
            {"notes": "x" * 20_001},
            error(
                "invalid_request",
                "notes: Ensure this field has no more than 20000 characters.",
                "notes",
            ),
        ),
        (
            {"stage": "won", "score": 100, "email": "x@y.z"},
            error("invalid_request", f"Unknown fields: email, score. {UNKNOWN_FIELDS}", "email"),
        ),
        (
            {"tags": ["vip"]},
            error("invalid_request", f"Unknown fields: tags. {UNKNOWN_FIELDS}", "tags"),
        ),
        ({}, error("invalid_request", "Send at least one of stage, owner and notes.")),
        (["stage", "won"], error("invalid_json", "The request body must be a JSON object.")),
        ("won", error("invalid_json", "The request body must be a JSON object.")),
    ],
)
def test_an_invalid_patch_answers_400_and_changes_nothing(
    api: Client,
    keys: dict[str, str],
    alpha: Company,
    lead: Lead,
    body: Any,
    expected: dict[str, Any],
) -> None:
    before = lead_row(alpha, lead.pk)

    response = patch(api, f"/v1/leads/{lead.pk}", keys["write"], body)

    assert response.status_code == 400, response.content
    assert response.json() == expected
    assert lead_row(alpha, lead.pk) == before
    assert events(alpha, lead) == []


def test_malformed_json_or_another_media_type_is_refused(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    headers = auth(keys["write"])
    path = f"/v1/leads/{lead.pk}"

    malformed = api.patch(path, '{"stage": ', content_type="application/json", headers=headers)
    nan = api.patch(path, '{"notes": NaN}', content_type="application/json", headers=headers)
    form = api.patch(
        path, "stage=won", content_type="application/x-www-form-urlencoded", headers=headers
    )

    assert malformed.status_code == 400
    assert malformed.json() == error("invalid_json", "The request body is not valid JSON.")
    assert nan.status_code == 400
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported_media_type"
    assert lead_row(alpha, lead.pk)["stage"] == "new"
    assert events(alpha, lead) == []


def test_a_viewer_cannot_own_a_lead(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    viewer = member(alpha, Role.VIEWER, email="viewer@alpha.example.com")

    by_email = patch(api, f"/v1/leads/{lead.pk}", keys["write"], {"owner": viewer.email})
    by_id = patch(api, f"/v1/leads/{lead.pk}", keys["write"], {"owner": viewer.pk})

    for response in (by_email, by_id):
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_request", "owner: viewers cannot own leads.", "owner"
        )
    assert lead_row(alpha, lead.pk)["owner_id"] is None
    assert events(alpha, lead) == []


def test_a_removed_member_cannot_own_a_lead(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    gone = member(alpha, Role.AGENT, email="gone@alpha.example.com")
    with tenant_context(alpha):
        User.objects.filter(pk=gone.pk).update(is_active=False)

    response = patch(api, f"/v1/leads/{lead.pk}", keys["write"], {"owner": gone.email})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "owner"
    assert lead_row(alpha, lead.pk)["owner_id"] is None


# -- credentials and scopes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "code", "message"),
    [
        (None, "missing_credentials", "Send 'Authorization: Bearer <API key>'."),
        ("Basic dXNlcjpwYXNz", "missing_credentials", "Send 'Authorization: Bearer <API key>'."),
        ("Bearer chapi_nope_nope", "invalid_api_key", "The API key is not valid."),
        ("Bearer a.b.c", "invalid_token", "The token is not valid."),
        ("revoked", "revoked_api_key", "The API key was revoked."),
    ],
)
@pytest.mark.parametrize("method", ["list", "get", "patch"])
def test_missing_invalid_or_revoked_credentials_answer_401(
    api: Client,
    keys: dict[str, str],
    alpha: Company,
    lead: Lead,
    authorization: str | None,
    code: str,
    message: str,
    method: str,
) -> None:
    if authorization == "revoked":
        authorization = f"Bearer {keys['revoked']}"
    headers = {"Authorization": authorization} if authorization else {}
    path = "/v1/leads" if method == "list" else f"/v1/leads/{lead.pk}"

    if method == "patch":
        response = api.patch(
            path, json.dumps({"stage": "won"}), content_type="application/json", headers=headers
        )
    else:
        response = api.get(path, headers=headers)

    assert response.status_code == 401, response.content
    assert response.json() == error(code, message)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert lead_row(alpha, lead.pk)["stage"] == "new"


@pytest.mark.parametrize("key", ["chat", "write_only"])
@pytest.mark.parametrize("path", ["/v1/leads", "/v1/leads/{pk}"])
def test_a_key_without_the_read_scope_cannot_read(
    api: Client, keys: dict[str, str], lead: Lead, key: str, path: str
) -> None:
    response = get(api, path.format(pk=lead.pk), keys[key])

    assert response.status_code == 403
    assert response.json() == error("forbidden_scope", "This key lacks the 'read' scope.")


@pytest.mark.parametrize("key", ["read", "chat"])
def test_a_key_without_the_write_scope_cannot_patch(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead, key: str
) -> None:
    response = patch(api, f"/v1/leads/{lead.pk}", keys[key], {"stage": "won", "notes": "x"})

    assert response.status_code == 403
    assert response.json() == error("forbidden_scope", "This key lacks the 'write' scope.")
    row = lead_row(alpha, lead.pk)
    assert (row["stage"], row["notes"], row["updated_at"]) == ("new", "first call", T0)
    assert events(alpha, lead) == []


def test_a_write_only_key_can_patch(
    api: Client, keys: dict[str, str], alpha: Company, lead: Lead
) -> None:
    response = patch(api, f"/v1/leads/{lead.pk}", keys["write_only"], {"stage": "won"})

    assert response.status_code == 200
    assert lead_row(alpha, lead.pk)["stage"] == "won"


def test_a_dashboard_token_reads_leads_but_cannot_patch(
    api: Client, alpha: Company, lead: Lead
) -> None:
    token = api_token_issue(company=alpha, user_id=owner(alpha).pk, role=Role.OWNER)

    listed = get(api, "/v1/leads", token)
    changed = patch(api, f"/v1/leads/{lead.pk}", token, {"stage": "won"})

    assert listed.status_code == 200
    assert ids(listed) == [lead.pk]
    assert changed.status_code == 403
    assert changed.json() == error("forbidden_scope", "This key lacks the 'write' scope.")
    assert lead_row(alpha, lead.pk)["stage"] == "new"


# -- isolation ----------------------------------------------------------------------------------


@pytest.fixture
def two_companies_leads(alpha: Company, beta: Company) -> Iterator[tuple[Lead, Lead]]:
    """A lead in each company whose ids differ (each schema has its own sequence, so the same
    id may exist in both: that would not prove anything)."""
    beta_lead = lead_make(beta, name="Beta's lead", notes="beta notes")
    alpha_lead = lead_make(alpha, name="Alpha's lead", notes="alpha notes", updated_at=T0)
    while True:
        with tenant_context(beta):
            clash = Lead.objects.filter(pk=alpha_lead.pk).exists()
        if not clash:
            break
        alpha_lead = lead_make(alpha, name="Alpha's lead", notes="alpha notes", updated_at=T0)
    yield alpha_lead, beta_lead


def test_another_company_key_never_sees_or_changes_a_lead(
    api: Client,
    keys: dict[str, str],
    alpha: Company,
    beta: Company,
    two_companies_leads: tuple[Lead, Lead],
) -> None:
    alpha_lead, beta_lead = two_companies_leads
    alpha_owner = owner(alpha)
    before = lead_row(alpha, alpha_lead.pk)

    listed = get(api, "/v1/leads", keys["beta"], page_size=100)
    read = get(api, f"/v1/leads/{alpha_lead.pk}", keys["beta"])
    changed = patch(
        api,
        f"/v1/leads/{alpha_lead.pk}",
        keys["beta"],
        {"stage": "lost", "owner": None, "notes": "taken over"},
    )
    assigned = patch(api, f"/v1/leads/{alpha_lead.pk}", keys["beta"], {"owner": alpha_owner.pk})
    back = get(api, f"/v1/leads/{beta_lead.pk}", keys["read"])

    assert ids(listed) == [beta_lead.pk]
    for response in (read, changed, assigned):
        assert response.status_code == 404
        assert response.json() == error("not_found", "Not found.")
    assert back.status_code == 404
    assert lead_row(alpha, alpha_lead.pk) == before
    assert events(alpha, alpha_lead) == []


def test_a_member_of_another_company_cannot_own_a_lead(
    api: Client,
    keys: dict[str, str],
    alpha: Company,
    beta: Company,
    two_companies_leads: tuple[Lead, Lead],
) -> None:
    _alpha_lead, beta_lead = two_companies_leads
    alpha_seller = member(alpha, Role.AGENT, email="only-alpha@alpha.example.com")

    response = patch(api, f"/v1/leads/{beta_lead.pk}", keys["beta"], {"owner": alpha_seller.email})

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request",
        "owner: no active team member of this company has that email or id.",
        "owner",
    )
    assert lead_row(beta, beta_lead.pk)["owner_id"] is None
    assert events(beta, beta_lead) == []


# -- OpenAPI ------------------------------------------------------------------------------------


def test_the_schema_is_valid_and_describes_the_three_lead_operations(api: Client) -> None:
    response = api.get("/v1/schema", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = schema["paths"]
    expected = {
        ("/v1/leads", "get"): {"200", "400", "401", "403", "429"},
        ("/v1/leads/{id}", "get"): {"200", "401", "403", "404", "429"},
        ("/v1/leads/{id}", "patch"): {"200", "400", "401", "403", "404", "415", "429"},
    }
    assert set(paths["/v1/leads"]) == {"get"}
    assert set(paths["/v1/leads/{id}"]) == {"get", "patch"}
    for (path, method), codes in expected.items():
        operation = paths[path][method]
        assert operation["tags"] == ["Leads"]
        assert set(operation["responses"]) == codes, (path, method)
        assert operation["security"] == [{"bearer": []}]
        for code in codes - {"200"}:
            content = operation["responses"][code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}
            assert content["examples"], (path, method, code)
    parameters = {p["name"] for p in paths["/v1/leads"]["get"]["parameters"]}
    assert parameters == {"stage", "min_score", "updated_since", "cursor", "page_size"}
    patch_body = paths["/v1/leads/{id}"]["patch"]["requestBody"]["content"]["application/json"]
    component = patch_body["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][component]["properties"]) == {
        "stage",
        "owner",
        "notes",
    }
    lead_properties = set(schema["components"]["schemas"]["Lead"]["properties"])
    assert {"budget", "timeline", "owner", "score_breakdown", "booking"} <= lead_properties
    assert "conversation_ids" in lead_properties
    validator = pytest.importorskip("openapi_spec_validator", minversion="0.9.0")
    validator.validate(schema)
