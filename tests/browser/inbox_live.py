"""What the sales inbox's browser tests (tests/browser/test_inbox.py) add to the widget's live
stack (tests/browser/widget_live.py): team members of the stack's companies with a password,
logging them into their company's dashboard (allauth, on `<slug>.localhost:<port>`), leads
committed through the ORM in the company's schema, and the conversations read back.

Everything here writes or reads committed data through `committed` (a fresh connection on a
fresh thread): the servers only see what is committed, and the browser's event loop keeps the
test's thread out of the ORM. The companies (and so all of this) go when the stack stops.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django_tenants.utils import tenant_context

from tests.browser.widget_live import WidgetCompany, WidgetStack
from tests.conftest import PASSWORD
from tests.live import committed


@dataclass(frozen=True)
class TeamMember:
    pk: int
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class LeadSpec:
    """A lead to commit: what the list shows and filters on."""

    name: str
    email: str
    stage: str
    score: int
    channel: str
    tags: tuple[str, ...] = ()
    owner: str = ""  # a TeamMember's email, or nobody
    company_name: str = ""


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    text: str
    status: str
    author: str  # the agent's email, for agents' messages


@dataclass(frozen=True)
class StoredConversation:
    pk: int
    mode: str
    agent: str  # email, or ""
    language: str
    lead_id: int | None
    lead_owner: str  # email, or ""
    messages: list[StoredMessage]


def _company(slug: str) -> Any:
    from apps.tenants.models import Company

    return Company.objects.get(slug=slug)


def member_add(stack: WidgetStack, company: WidgetCompany, *, role: str, name: str) -> TeamMember:
    """A new member of `company` with `role`, a verified email and PASSWORD."""
    from apps.accounts.services import user_create

    def work() -> TeamMember:
        with tenant_context(_company(company.slug)):
            local = name.split()[0].lower()
            user = user_create(
                email=f"{local}.{role}@{company.slug}.example.com",
                name=name,
                password=PASSWORD,
                role=role,
                email_verified=True,
            )
            return TeamMember(pk=user.pk, email=user.email, name=user.name, role=role)

    return committed(stack.django_db_blocker, work)


def dashboard_url(stack: WidgetStack, company: WidgetCompany, path: str) -> str:
    return f"http://{company.slug}.localhost:{stack.port}{path}"


def dashboard_login(page: Any, stack: WidgetStack, company: WidgetCompany, member: TeamMember,
                    path: str) -> None:  # fmt: skip
    """Log `member` in on the company's host (allauth's form) and land on `path`."""
    from playwright.sync_api import expect

    page.goto(dashboard_url(stack, company, f"/accounts/login/?next={path}"))
    page.fill("#id_login", member.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type='submit']").click()
    expect(page).to_have_url(dashboard_url(stack, company, path))


def live(page: Any) -> None:
    """Until the page's websocket to /ws/dashboard/ is open (its badge says so)."""
    from playwright.sync_api import expect

    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def _lead(spec: LeadSpec, owners: dict[str, Any]) -> Any:
    from apps.leads.models import Lead

    return Lead(
        name=spec.name,
        email=spec.email,
        company_name=spec.company_name,
        stage=spec.stage,
        score=spec.score,
        source_channel=spec.channel,
        tags=list(spec.tags),
        owner=owners.get(spec.owner),
    )


def _owners() -> dict[str, Any]:
    from apps.accounts.models import User

    return {u.email: u for u in User.objects.all()}


def leads_seed(stack: WidgetStack, company: WidgetCompany, specs: list[LeadSpec]) -> list[int]:
    """Commit `specs` as leads of `company`, in order; their ids."""
    from apps.leads.models import Lead

    def work() -> list[int]:
        with tenant_context(_company(company.slug)):
            owners = _owners()
            leads = Lead.objects.bulk_create([_lead(spec, owners) for spec in specs])
            return [lead.pk for lead in leads]

    return committed(stack.django_db_blocker, work)


def lead_create_live(stack: WidgetStack, company: WidgetCompany, spec: LeadSpec) -> int:
    """Commit one lead and tell the company's open dashboards, as every lead service does
    (`lead_changed_broadcast`, after commit, through the channel layer)."""
    from apps.leads.services import lead_changed_broadcast

    def work() -> int:
        with tenant_context(_company(company.slug)):
            lead = _lead(spec, _owners())
            lead.save()
            lead_changed_broadcast(lead)
            return int(lead.pk)

    return committed(stack.django_db_blocker, work)


def lead_id_by_email(stack: WidgetStack, company: WidgetCompany, email: str) -> int | None:
    from apps.leads.models import Lead

    def work() -> int | None:
        with tenant_context(_company(company.slug)):
            return Lead.objects.filter(email=email).values_list("pk", flat=True).first()

    return committed(stack.django_db_blocker, work)


def conversation_read(
    stack: WidgetStack, company: WidgetCompany, session_id: str
) -> StoredConversation | None:
    """The widget conversation of `session_id`, with every message in id order."""
    from apps.conversations.models import Conversation, Message

    def work() -> StoredConversation | None:
        with tenant_context(_company(company.slug)):
            conversation = (
                Conversation.objects.select_related("agent", "contact__lead__owner")
                .filter(channel="web", session_id=session_id)
                .first()
            )
            if conversation is None:
                return None
            lead = conversation.contact.lead
            rows = Message.objects.filter(conversation=conversation).select_related("author")
            return StoredConversation(
                pk=conversation.pk,
                mode=conversation.mode,
                agent=conversation.agent.email if conversation.agent else "",
                language=conversation.language,
                lead_id=lead.pk if lead is not None else None,
                lead_owner=lead.owner.email if lead is not None and lead.owner else "",
                messages=[
                    StoredMessage(
                        m.pk, m.role, m.text, m.status, m.author.email if m.author else ""
                    )
                    for m in rows.order_by("id")
                ],
            )

    return committed(stack.django_db_blocker, work)


def translated(language: str, text: str, **values: str) -> str:
    """`text` as the product says it in `language` (the same catalogue the servers read)."""
    from django.utils.translation import gettext, override

    with override(language):
        result = gettext(text)
    return result % values if values else result


def lead_headers(language: str) -> list[str]:
    from django.utils.translation import override

    from apps.leads.exports import lead_headers as headers

    with override(language):
        return [str(h) for h in headers()]


def csv_rows(data: bytes) -> list[list[str]]:
    """A CSV export's rows, header first; it must start with the UTF-8 BOM."""
    text = data.decode("utf-8")
    assert text.startswith("\ufeff"), text[:20]
    return list(csv.reader(io.StringIO(text[1:])))
