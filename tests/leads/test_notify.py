"""Telling the team about a qualified lead: in-dashboard notifications (and their live event),
the email, the CRM webhook's `lead.qualified` delivery, once per qualification."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.conversations.models import Contact, Conversation
from apps.leads.models import Lead, LeadEvent, Notification, Stage, WebhookDelivery
from apps.leads.notify import lead_qualified_notify
from apps.leads.realtime import inbox_group
from apps.leads.services import lead_settings_get
from apps.leads.tasks import lead_qualified_notify_task
from apps.tenants.models import Company
from tests.conftest import host, member, owner
from tests.fakes.crm_server import FakeCrm

SECRET = "whsec_notify_0123456789abcdef"
BREAKDOWN = {
    "need": {"points": 25, "max": 25, "reason": "need_stated"},
    "budget": {"points": 25, "max": 25, "reason": "budget_stated"},
    "authority": {"points": 15, "max": 15, "reason": "authority_decider"},
    "timeline": {"points": 10.0, "max": 20, "reason": "timeline_later"},
    "engagement": {"points": 7.5, "max": 15, "reason": "engagement_contact"},
}


@pytest.fixture
def english_alpha(alpha: Company) -> Iterator[Company]:
    """alpha, writing to its team in English (the source strings)."""
    alpha.language = "en"
    alpha.save(update_fields=["language"])
    yield alpha


class Team:
    def __init__(self, company: Company) -> None:
        self.owner = owner(company)
        self.admin = member(company, Role.ADMIN)
        self.lead_owner = member(company, Role.AGENT)
        self.other_agent = member(company, Role.AGENT)
        self.viewer = member(company, Role.VIEWER)


@pytest.fixture
def team(english_alpha: Company) -> Team:
    return Team(english_alpha)


def qualified_lead(lead_owner: User | None, **fields: Any) -> Lead:
    contact = Contact.objects.create(channel="web", external_id="visitor-1", name="Ana")
    lead = Lead.objects.create(
        **{
            "name": "Ana Pérez",
            "email": "ana@cliente.example",
            "phone": "+525512345678",
            "company_name": "Cliente SA",
            "role": "CEO",
            "need": "A sales assistant for our online store",
            "budget_amount": Decimal("5000"),
            "budget_currency": "USD",
            "timeline": "in two months",
            "timeline_date": date(2030, 1, 15),
            "stage": Stage.QUALIFIED,
            "score": 82,
            "score_breakdown": BREAKDOWN,
            "owner": lead_owner,
            "tags": ["ecommerce", "vip"],
            "source_channel": "web",
            "qualified_at": timezone.now(),
            **fields,
        }
    )
    contact.lead = lead
    contact.save(update_fields=["lead"])
    first = Conversation.objects.create(contact=contact, channel="web", session_id="s-1")
    second = Conversation.objects.create(contact=contact, channel="web", session_id="s-2")
    lead.conversation_ids = [first.pk, second.pk]  # type: ignore[attr-defined]
    return lead


def notified(lead: Lead) -> list[tuple[int, str, str, str]]:
    return list(
        Notification.objects.filter(lead=lead)
        .order_by("user_id")
        .values_list("user_id", "kind", "text", "url")
    )


def listen(work: Callable[[], Any], *, quiet: float = 0.3) -> list[dict[str, Any]]:
    """Run `work` (on this thread) while subscribed to the company's inbox group."""
    group = inbox_group(connection.schema_name)  # type: ignore[attr-defined]

    async def run() -> list[dict[str, Any]]:
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            await sync_to_async(work)()
            events: list[dict[str, Any]] = []
            while True:
                try:
                    event = await asyncio.wait_for(layer.receive(channel), timeout=quiet)
                except TimeoutError:
                    return events
                events.append(event)
        finally:
            await layer.group_discard(group, channel)

    return async_to_sync(run)()


# --- In-dashboard notifications ------------------------------------------------------------


def test_owners_admins_and_the_lead_owner_are_notified_not_agents_or_viewers(
    english_alpha: Company, team: Team
) -> None:
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner)

        lead_qualified_notify(lead_id=lead.pk)

        rows = notified(lead)
        others = Notification.objects.filter(user__in=[team.other_agent, team.viewer]).count()
    text = "Lead Ana Pérez is qualified (score 82)."
    url = f"/dashboard/leads/{lead.pk}/"
    assert rows == [
        (team.owner.pk, "lead.qualified", text, url),
        (team.admin.pk, "lead.qualified", text, url),
        (team.lead_owner.pk, "lead.qualified", text, url),
    ]
    assert others == 0


def test_an_inactive_owner_is_not_notified(english_alpha: Company, team: Team) -> None:
    with tenant_context(english_alpha):
        User.objects.filter(pk=team.lead_owner.pk).update(is_active=False)
        lead = qualified_lead(User.objects.get(pk=team.lead_owner.pk))

        lead_qualified_notify(lead_id=lead.pk)

        users = [row[0] for row in notified(lead)]
    assert users == [team.owner.pk, team.admin.pk]


def test_the_dashboards_hear_of_the_notification_after_commit(
    english_alpha: Company, team: Team, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner)

        def work() -> None:
            with django_capture_on_commit_callbacks(execute=True):
                lead_qualified_notify(lead_id=lead.pk)

        events = listen(work)
    assert [e for e in events if e["kind"] == "notification"] == [
        {"type": "inbox.event", "kind": "notification", "lead_id": lead.pk}
    ]


# --- Email ---------------------------------------------------------------------------------


@override_settings(PUBLIC_BASE_URL="")
def test_the_team_is_emailed_the_lead_with_its_score_and_a_link(
    english_alpha: Company, team: Team, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner)
        with django_capture_on_commit_callbacks(execute=True):
            lead_qualified_notify(lead_id=lead.pk)

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    link = f"https://{host(english_alpha)}/dashboard/leads/{lead.pk}/"
    assert email.to == [team.owner.email, team.admin.email, team.lead_owner.email]
    assert email.subject == "Qualified lead: Ana Pérez (score 82)"
    assert email.body.splitlines() == [
        "Ana Pérez is a qualified lead (score 82 of 100).",
        "",
        "Score: 82",
        "  - Need: 25/25 (Said what they need)",
        "  - Budget: 25/25 (Gave a budget)",
        "  - Authority: 15/15 (Decides the purchase (role))",
        "  - Timeline: 10/20 (Wants it in a few months)",
        "  - Engagement: 7.5/15 (Left contact details)",
        "",
        "Need: A sales assistant for our online store",
        "Budget: 5,000 USD",
        "Timeline: in two months (2030-01-15)",
        "",
        "Contact",
        "Name: Ana Pérez",
        "Company: Cliente SA (CEO)",
        "Email: ana@cliente.example",
        "Phone: +525512345678",
        "",
        "Open the lead:",
        link,
    ]
    [(html, mimetype)] = email.alternatives  # type: ignore[attr-defined]
    assert mimetype == "text/html"
    assert f'<a href="{link}"' in html
    assert "<strong>Ana Pérez</strong> is a qualified lead (score 82 of 100)." in html
    assert "<td>Engagement</td><td" in html


def test_the_email_escapes_what_the_visitor_wrote(
    english_alpha: Company, team: Team, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner, need='<script>alert("x")</script>')
        with django_capture_on_commit_callbacks(execute=True):
            lead_qualified_notify(lead_id=lead.pk)

    [(html, _mimetype)] = mail.outbox[0].alternatives  # type: ignore[attr-defined]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '<script>alert("x")</script>' in mail.outbox[0].body  # plain text: as written


@override_settings(PUBLIC_BASE_URL="http://localhost:8000")
def test_the_settings_emails_replace_the_team_and_the_link_follows_public_base_url(
    english_alpha: Company, team: Team, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(english_alpha):
        settings_row = lead_settings_get()
        settings_row.notify_emails = ["Sales@Alpha.example.com", "crm-inbox@alpha.example.com"]
        settings_row.save()
        lead = qualified_lead(None)
        with django_capture_on_commit_callbacks(execute=True):
            lead_qualified_notify(lead_id=lead.pk)

        users = [row[0] for row in notified(lead)]
    assert mail.outbox[0].to == ["sales@alpha.example.com", "crm-inbox@alpha.example.com"]
    assert f"http://{host(english_alpha)}:8000/dashboard/leads/{lead.pk}/" in mail.outbox[0].body
    assert users == [team.owner.pk, team.admin.pk]  # in-dashboard: still the team


def test_the_email_is_sent_only_after_commit(english_alpha: Company, team: Team) -> None:
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner)

        lead_qualified_notify(lead_id=lead.pk)  # the test's transaction never commits

    assert mail.outbox == []


# --- Once per qualification ----------------------------------------------------------------


def test_notifying_twice_notifies_once(
    english_alpha: Company, team: Team, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_context(english_alpha):
        settings_row = lead_settings_get()
        settings_row.crm_webhook_url = "https://crm.example.com/hooks"
        settings_row.save()
        lead = qualified_lead(team.lead_owner)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            lead_qualified_notify(lead_id=lead.pk)
            lead_qualified_notify(lead_id=lead.pk)
            lead_qualified_notify_task.apply(args=(lead.pk,))

        events = list(LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.NOTIFIED))
        notifications = Notification.objects.filter(lead=lead).count()
        delivery = WebhookDelivery.objects.get()
    # Once: the live event, the email and the webhook's first attempt.
    assert len(callbacks) == 3
    assert notifications == 3
    assert len(events) == 1
    assert events[0].new == "82"
    assert events[0].data == {
        "qualified_at": lead.qualified_at.isoformat(),
        "notified_user_ids": [team.owner.pk, team.admin.pk, team.lead_owner.pk],
        "emails": [team.owner.email, team.admin.email, team.lead_owner.email],
        "webhook_delivery_id": delivery.pk,
    }


def test_a_new_qualification_notifies_again(english_alpha: Company, team: Team) -> None:
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner)
        lead_qualified_notify(lead_id=lead.pk)
        Lead.objects.filter(pk=lead.pk).update(qualified_at=timezone.now() + timedelta(days=3))

        lead_qualified_notify(lead_id=lead.pk)

        events = LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.NOTIFIED).count()
        notifications = Notification.objects.filter(lead=lead).count()
    assert events == 2
    assert notifications == 6


def test_a_lead_that_is_not_qualified_or_gone_is_not_notified(
    english_alpha: Company, team: Team
) -> None:
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner, qualified_at=None, stage=Stage.NEW)

        lead_qualified_notify(lead_id=lead.pk)
        lead_qualified_notify(lead_id=lead.pk + 1000)

        counts = (Notification.objects.count(), LeadEvent.objects.count())
    assert counts == (0, 0)
    assert mail.outbox == []


# --- The CRM webhook -----------------------------------------------------------------------


def test_without_a_webhook_url_no_delivery_is_made(english_alpha: Company, team: Team) -> None:
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner)

        lead_qualified_notify(lead_id=lead.pk)

        deliveries = WebhookDelivery.objects.count()
    assert deliveries == 0


@override_settings(PUBLIC_BASE_URL="")
def test_the_crm_receives_the_documented_lead_payload(
    english_alpha: Company, team: Team, django_capture_on_commit_callbacks: Any
) -> None:
    with FakeCrm(secret=SECRET) as crm, tenant_context(english_alpha):
        settings_row = lead_settings_get()
        url = crm.hook_url()
        settings_row.crm_webhook_url = url
        settings_row.crm_webhook_secret = SECRET
        settings_row.save()
        lead = qualified_lead(team.lead_owner)
        lead.refresh_from_db()

        with django_capture_on_commit_callbacks(execute=True):
            lead_qualified_notify_task.apply(args=(lead.pk,))

        delivery = WebhookDelivery.objects.get()
    assert delivery.event == "lead.qualified"
    assert delivery.lead_id == lead.pk
    assert delivery.url == url
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert len(crm.received) == 1
    received = crm.received[0]
    assert received.signature_valid is True
    assert received.headers["X-Chapi-Event"] == "lead.qualified"
    body = received.json
    assert body == delivery.payload
    occurred_at = body.pop("occurred_at")
    assert occurred_at.startswith(str(timezone.now().year))
    assert body == {
        "event": "lead.qualified",
        "company": "alpha",
        "lead": {
            "id": lead.pk,
            "url": f"https://{host(english_alpha)}/dashboard/leads/{lead.pk}/",
            "name": "Ana Pérez",
            "email": "ana@cliente.example",
            "phone": "+525512345678",
            "company_name": "Cliente SA",
            "role": "CEO",
            "need": "A sales assistant for our online store",
            "budget": {"amount": "5000.00", "currency": "USD"},
            "timeline": {"text": "in two months", "date": "2030-01-15"},
            "preferred_channel": "",
            "preferred_time": "",
            "source_channel": "web",
            "first_page": "",
            "context": {},
            "score": 82,
            "score_breakdown": BREAKDOWN,
            "stage": "qualified",
            "owner_email": team.lead_owner.email,
            "tags": ["ecommerce", "vip"],
            "conversation_ids": lead.conversation_ids,  # type: ignore[attr-defined]
            "created_at": lead.created_at.isoformat(),
            "updated_at": lead.updated_at.isoformat(),
            "qualified_at": lead.qualified_at.isoformat() if lead.qualified_at else None,
        },
    }


def test_another_companys_team_hears_nothing(
    english_alpha: Company, beta: Company, team: Team
) -> None:
    beta_boss = owner(beta)
    with tenant_context(english_alpha):
        lead = qualified_lead(team.lead_owner)
        lead_qualified_notify(lead_id=lead.pk)
    with tenant_context(beta):
        beta_counts = (
            Notification.objects.count(),
            LeadEvent.objects.count(),
            Notification.objects.filter(user_id=beta_boss.pk).count(),
        )
    assert beta_counts == (0, 0, 0)
