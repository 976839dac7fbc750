"""A product promise: nothing of one company is visible or usable from another company's host,
and company accounts do not exist on the platform (public) host."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import Invitation, Membership, User
from apps.accounts.services import invitation_create
from apps.audit.models import AuditLog
from apps.audit.services import SYSTEM, audit_record
from apps.tenants.models import Company
from tests.conftest import PASSWORD, host, logged_in, member, owner

COMPANIES = "/admin/tenants/company/"
WRONG_CREDENTIALS = "The email address and/or password you specified are not correct."


def login(client: Client, email: str, password: str = PASSWORD) -> Any:
    return client.post("/accounts/login/", {"login": email, "password": password})


def assert_anonymous(client: Client) -> None:
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dashboard/"


def result_list(response: Any) -> list[Any]:
    return list(response.context["cl"].result_list)


@pytest.fixture
def beta_spy(beta: Company) -> User:
    return member(beta, "admin", email="spy@beta.example.com")


# --- Accounts and sessions -----------------------------------------------------------------


def test_a_user_of_alpha_cannot_log_in_on_beta(alpha: Company, beta: Company) -> None:
    client = Client(HTTP_HOST=host(beta), HTTP_ACCEPT_LANGUAGE="en")

    response = login(client, owner(alpha).email)

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [WRONG_CREDENTIALS]
    assert "chapi_session" not in response.cookies
    assert_anonymous(client)
    with tenant_context(beta):
        assert not User.objects.filter(email=owner(alpha).email).exists()


def test_the_same_credentials_work_on_alpha(alpha: Company) -> None:
    # Control for the test above: the credentials are right, the host is what matters.
    client = Client(HTTP_HOST=host(alpha))

    response = login(client, owner(alpha).email)

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


def test_the_session_cookie_of_alpha_gives_nothing_on_beta(alpha: Company, beta: Company) -> None:
    alpha_client = Client(HTTP_HOST=host(alpha))
    assert login(alpha_client, owner(alpha).email).status_code == 302
    session_key = alpha_client.cookies[settings.SESSION_COOKIE_NAME].value
    beta_client = Client(HTTP_HOST=host(beta))
    beta_client.cookies[settings.SESSION_COOKIE_NAME] = session_key

    assert_anonymous(beta_client)
    assert beta_client.get("/dashboard/team/")["Location"] == (
        "/accounts/login/?next=/dashboard/team/"
    )
    admin = beta_client.get("/admin/", follow=True)
    assert admin.redirect_chain[-1] == ("/accounts/login/?next=%2Fadmin%2F", 302)
    assert admin.context["user"].is_authenticated is False
    # The cookie still works where it was issued.
    assert alpha_client.get("/dashboard/").status_code == 200


# --- The company admin ---------------------------------------------------------------------


def test_company_admin_settings_show_only_the_own_company(
    alpha: Company, beta: Company, owner_client_alpha: Client
) -> None:
    own = owner_client_alpha.get(f"/admin/tenants/companysettings/{alpha.pk}/change/")
    other = owner_client_alpha.get(f"/admin/tenants/companysettings/{beta.pk}/change/")
    changelist = owner_client_alpha.get("/admin/tenants/companysettings/")

    assert own.status_code == 200
    assert own.context["original"].pk == alpha.pk
    assert other.status_code == 302
    assert other["Location"] == "/admin/"
    assert changelist["Location"] == f"/admin/tenants/companysettings/{alpha.pk}/change/"


def test_company_admin_cannot_change_another_company(
    alpha: Company, beta: Company, owner_client_alpha: Client
) -> None:
    response = owner_client_alpha.post(
        f"/admin/tenants/companysettings/{beta.pk}/change/", {"name": "Hacked", "language": "en"}
    )

    assert response.status_code == 302
    beta.refresh_from_db()
    assert (beta.name, beta.language) == ("Beta", "es")
    with tenant_context(beta):
        assert list(AuditLog.objects.values_list("action", flat=True)) == ["company.create"]


def test_company_admin_audit_log_lists_only_own_entries(
    alpha: Company, beta: Company, owner_client_alpha: Client
) -> None:
    with tenant_context(alpha):
        audit_record(actor=SYSTEM, action="alpha.visible")
    with tenant_context(beta):
        audit_record(actor=SYSTEM, action="beta.secret")

    response = owner_client_alpha.get("/admin/audit/auditlog/")

    assert response.status_code == 200
    assert sorted(entry.action for entry in result_list(response)) == [
        "alpha.visible",
        "company.create",
    ]
    assert b"beta.secret" not in response.content


def test_company_admin_membership_list_shows_only_own_members(
    alpha: Company, beta_spy: User, owner_client_alpha: Client
) -> None:
    member(alpha, "agent", email="agent@alpha.example.com")

    response = owner_client_alpha.get("/admin/accounts/membership/")

    assert response.status_code == 200
    assert sorted(m.user.email for m in result_list(response)) == [
        "agent@alpha.example.com",
        "owner@alpha.example.com",
    ]
    assert b"spy@beta.example.com" not in response.content


def test_company_admin_has_no_platform_company_list(owner_client_alpha: Client) -> None:
    assert owner_client_alpha.get("/admin/tenants/company/").status_code == 404
    assert owner_client_alpha.get("/admin/accounts/user/").status_code == 404


# --- Invitations, team page, queries ---------------------------------------------------------


def test_an_invitation_of_alpha_does_not_work_on_beta(alpha: Company, beta: Company) -> None:
    with tenant_context(alpha):
        issued = invitation_create(
            email="new@example.com",
            role="agent",
            invited_by=owner(alpha),
            actor=SYSTEM,
            link_for=lambda token: f"http://{host(alpha)}/invite/{token}/",
        )
    path = f"/invite/{issued.token}/"
    beta_client = Client(HTTP_HOST=host(beta))

    shown = beta_client.get(path)
    accepted = beta_client.post(path, {"name": "New Person", "password": PASSWORD})

    assert shown.status_code == 404
    assert shown.templates[0].name == "accounts/invitation_invalid.html"
    assert accepted.status_code == 404
    assert_anonymous(beta_client)
    with tenant_context(beta):
        assert not User.objects.filter(email="new@example.com").exists()
        assert Invitation.objects.count() == 0
    with tenant_context(alpha):
        assert Invitation.objects.get().accepted_at is None
    assert Client(HTTP_HOST=host(alpha)).get(path).status_code == 200


def test_team_page_of_alpha_never_lists_beta_members(
    alpha: Company, beta_spy: User, owner_client_alpha: Client
) -> None:
    response = owner_client_alpha.get("/dashboard/team/")

    assert response.status_code == 200
    assert [m.user.email for m in response.context["members"]] == ["owner@alpha.example.com"]
    assert b"spy@beta.example.com" not in response.content
    assert b"owner@beta.example.com" not in response.content


def test_tenant_context_queries_see_only_that_company(
    alpha: Company, beta: Company, beta_spy: User
) -> None:
    with tenant_context(beta):
        audit_record(actor=SYSTEM, action="beta.secret")

    with tenant_context(alpha):
        emails = sorted(User.objects.values_list("email", flat=True))
        spy = User.objects.filter(email="spy@beta.example.com").exists()
        memberships = Membership.objects.count()
        actions = sorted(AuditLog.objects.values_list("action", flat=True))

    assert emails == ["owner@alpha.example.com"]
    assert spy is False
    assert memberships == 1
    assert actions == ["company.create"]


# --- The platform (public) host ------------------------------------------------------------


def test_company_users_cannot_log_in_on_the_platform_host(alpha: Company) -> None:
    client = Client(HTTP_HOST=settings.ROOT_DOMAIN, HTTP_ACCEPT_LANGUAGE="en")

    response = login(client, owner(alpha).email)

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [WRONG_CREDENTIALS]
    admin = client.get(COMPANIES, follow=True)
    assert admin.redirect_chain[-1] == (f"/accounts/login/?next={quote(COMPANIES, safe='')}", 302)
    assert admin.context["user"].is_authenticated is False
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        assert not User.objects.filter(email=owner(alpha).email).exists()


def test_a_company_session_gives_nothing_on_the_platform_host(alpha: Company) -> None:
    alpha_client = logged_in(alpha, owner(alpha))
    public_client = Client(HTTP_HOST=settings.ROOT_DOMAIN)
    public_client.cookies[settings.SESSION_COOKIE_NAME] = alpha_client.cookies[
        settings.SESSION_COOKIE_NAME
    ].value

    response = public_client.get(COMPANIES)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={COMPANIES}"
