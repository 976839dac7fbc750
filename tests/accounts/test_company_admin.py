"""The company admin (/admin/ on the company's host): who gets in, and what it changes."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.assistants.models import AssistantProfile
from apps.assistants.services import assistant_profile_get
from apps.audit.models import AuditLog
from apps.audit.services import SYSTEM, audit_record
from apps.tenants.models import Company
from tests.conftest import assistant_profile_form, host, logged_in, member, owner

PROFILE_FORM = assistant_profile_form(
    bot_name="Alba", welcome_message="Hello! How can I help?", model="gpt-4o-mini"
)


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def user_with_role(company: Company, role: str) -> User:
    return owner(company) if role == Role.OWNER else member(company, role)


def admin_client(company: Company, role: str) -> Client:
    return english(logged_in(company, user_with_role(company, role)))


def profile_url(company: Company) -> str:
    with tenant_context(company):
        pk = assistant_profile_get().pk
    return f"/admin/assistants/assistantprofile/{pk}/change/"


def settings_url(company: Company) -> str:
    return f"/admin/tenants/companysettings/{company.pk}/change/"


def audit_entries(company: Company, action: str) -> list[AuditLog]:
    with tenant_context(company):
        return list(AuditLog.objects.filter(action=action).order_by("id"))


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_see_the_company_admin(alpha: Company, role: str) -> None:
    response = admin_client(alpha, role).get("/admin/")

    assert response.status_code == 200
    assert b"Alpha" in response.content
    assert b"/admin/assistants/assistantprofile/" in response.content
    assert b"/admin/tenants/companysettings/" in response.content
    assert b"/admin/audit/auditlog/" in response.content


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/audit/auditlog/", "/admin/assistants/assistantprofile/1/change/"]
)
def test_agents_and_viewers_are_forbidden_in_the_company_admin(
    alpha: Company, role: str, path: str
) -> None:
    response = admin_client(alpha, role).get(path, follow=True)

    assert response.status_code == 403
    assert b"Company administration" not in response.content


@pytest.mark.parametrize("path", ["/admin/", "/admin/audit/auditlog/"])
def test_anonymous_visitors_are_sent_to_the_login_page(alpha: Company, path: str) -> None:
    client = english(Client(HTTP_HOST=host(alpha)))

    response = client.get(path, follow=True)

    assert response.status_code == 200
    final_url, _status = response.redirect_chain[-1]
    assert final_url == f"/accounts/login/?next={path.replace('/', '%2F')}"
    assert response.wsgi_request.path == "/accounts/login/"


def test_the_admin_login_page_sends_anonymous_visitors_to_allauth(alpha: Company) -> None:
    response = Client(HTTP_HOST=host(alpha)).get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2F"


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_cannot_change_the_assistant_profile(alpha: Company, role: str) -> None:
    url = profile_url(alpha)

    response = admin_client(alpha, role).post(url, {**PROFILE_FORM, "bot_name": "Hacked"})

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"
    with tenant_context(alpha):
        assert assistant_profile_get().bot_name == "CHAPI"
    assert audit_entries(alpha, "assistant_profile.update") == []


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_edit_the_assistant_profile(alpha: Company, role: str) -> None:
    client = admin_client(alpha, role)
    url = profile_url(alpha)
    assert client.get(url).status_code == 200

    response = client.post(url, PROFILE_FORM)

    assert response.status_code == 302
    with tenant_context(alpha):
        profile = assistant_profile_get()
    assert (profile.bot_name, profile.welcome_message, profile.model) == (
        "Alba",
        "Hello! How can I help?",
        "gpt-4o-mini",
    )
    [entry] = audit_entries(alpha, "assistant_profile.update")
    assert entry.changes == {
        "bot_name": ["CHAPI", "Alba"],
        "welcome_message": ["¡Hola! ¿Cómo puedo ayudarte?", "Hello! How can I help?"],
        "model": ["", "gpt-4o-mini"],
    }
    assert entry.actor_kind == "user"


def test_the_assistant_profile_list_goes_straight_to_the_only_profile(alpha: Company) -> None:
    response = admin_client(alpha, Role.OWNER).get("/admin/assistants/assistantprofile/")

    assert response.status_code == 302
    assert response["Location"] == profile_url(alpha)


def test_the_assistant_profile_cannot_be_added_or_deleted(alpha: Company) -> None:
    client = admin_client(alpha, Role.OWNER)
    url = profile_url(alpha)

    assert client.get("/admin/assistants/assistantprofile/add/").status_code == 403
    assert client.post(url.replace("change", "delete"), {"post": "yes"}).status_code == 403
    with tenant_context(alpha):
        assert AssistantProfile.objects.count() == 1


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_edit_the_company_settings_and_it_is_audited_in_the_company(
    alpha: Company, beta: Company, role: str
) -> None:
    client = admin_client(alpha, role)
    assert client.get(settings_url(alpha)).status_code == 200

    response = client.post(settings_url(alpha), {"name": "Alpha Renamed", "language": "en"})

    assert response.status_code == 302
    alpha.refresh_from_db()
    assert (alpha.name, alpha.language, alpha.slug) == ("Alpha Renamed", "en", "alpha")
    [entry] = audit_entries(alpha, "company.update")
    assert entry.changes == {"name": ["Alpha", "Alpha Renamed"], "language": ["es", "en"]}
    assert entry.actor_kind == "user"
    assert entry.object_id == str(alpha.pk)
    assert audit_entries(beta, "company.update") == []


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_cannot_change_the_company_settings(alpha: Company, role: str) -> None:
    response = admin_client(alpha, role).post(
        settings_url(alpha), {"name": "Taken Over", "language": "en"}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={settings_url(alpha)}"
    alpha.refresh_from_db()
    assert (alpha.name, alpha.language) == ("Alpha", "es")
    assert audit_entries(alpha, "company.update") == []


def test_the_slug_cannot_be_changed_from_the_company_admin(alpha: Company) -> None:
    client = admin_client(alpha, Role.OWNER)
    schema_name = alpha.schema_name

    client.post(settings_url(alpha), {"name": "Alpha", "language": "es", "slug": "omega"})

    alpha.refresh_from_db()
    assert (alpha.slug, alpha.schema_name) == ("alpha", schema_name)


def test_a_company_admin_cannot_reach_another_companys_settings(
    alpha: Company, beta: Company
) -> None:
    client = admin_client(alpha, Role.OWNER)

    page = client.get(settings_url(beta))
    client.post(settings_url(beta), {"name": "Taken Over", "language": "en"})

    assert page.status_code == 302
    assert page["Location"] == "/admin/"
    beta.refresh_from_db()
    assert (beta.name, beta.language) == ("Beta", "es")
    assert audit_entries(beta, "company.update") == []


def test_an_empty_company_name_is_refused(alpha: Company) -> None:
    response = admin_client(alpha, Role.OWNER).post(
        settings_url(alpha), {"name": "", "language": "en"}
    )

    assert response.status_code == 200
    alpha.refresh_from_db()
    assert (alpha.name, alpha.language) == ("Alpha", "es")
    assert audit_entries(alpha, "company.update") == []


def test_the_audit_log_admin_is_read_only(alpha: Company) -> None:
    with tenant_context(alpha):
        entry = audit_record(actor=SYSTEM, action="test.entry", changes={"a": [1, 2]})
    client = admin_client(alpha, Role.OWNER)

    changelist = client.get("/admin/audit/auditlog/")
    detail = client.get(f"/admin/audit/auditlog/{entry.pk}/change/")
    add = client.get("/admin/audit/auditlog/add/")
    change = client.post(
        f"/admin/audit/auditlog/{entry.pk}/change/",
        {"action": "forged", "actor_email": "forger@example.com", "changes": "{}"},
    )
    delete = client.post(f"/admin/audit/auditlog/{entry.pk}/delete/", {"post": "yes"})
    bulk_delete = client.post(
        "/admin/audit/auditlog/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )

    assert changelist.status_code == 200
    assert b"test.entry" in changelist.content
    assert b"/admin/audit/auditlog/add/" not in changelist.content
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert bulk_delete.status_code == 200  # no such action: the list is shown again
    with tenant_context(alpha):
        stored = AuditLog.objects.get(pk=entry.pk)
    assert (stored.action, stored.actor_email, stored.changes) == ("test.entry", "", {"a": [1, 2]})
