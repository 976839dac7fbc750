"""Suspended companies: every host answers "suspended", until platform staff reactivate them."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import translation
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditLog
from apps.audit.services import SYSTEM
from apps.tenants.models import Company
from apps.tenants.services import company_reactivate, company_suspend, public_company_ensure
from tests.conftest import PASSWORD, host, logged_in, owner

SUSPENDED_MESSAGE = "This company's account is suspended. Contact support to reactivate it."
SUSPENDED_JSON = {"error": {"code": "company_suspended", "message": SUSPENDED_MESSAGE}}
BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture
def staff_client(staff_user: User) -> Client:
    client = Client(HTTP_HOST=settings.ROOT_DOMAIN, HTTP_ACCEPT_LANGUAGE="en")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        client.force_login(staff_user, backend=BACKEND)
    return client


def suspend(company: Company) -> Company:
    return company_suspend(company=company, actor=SYSTEM, reason="Unpaid invoices")


def audit_actions(company: Company) -> list[str]:
    with tenant_context(company):
        return list(AuditLog.objects.order_by("id").values_list("action", flat=True))


@pytest.mark.parametrize("path", ["/dashboard/", "/accounts/login/", "/admin/", "/", "/nowhere/"])
def test_suspended_company_host_answers_403_with_the_suspended_page(
    alpha: Company, path: str
) -> None:
    suspend(alpha)

    response = Client(HTTP_HOST=host(alpha)).get(path)

    assert response.status_code == 403
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert SUSPENDED_MESSAGE.encode() in response.content
    assert b"<h1>Cuenta suspendida \xc2\xb7 Account suspended</h1>" in response.content


def test_suspended_company_locks_out_signed_in_members_too(alpha: Company) -> None:
    client = logged_in(alpha, owner(alpha))
    suspend(alpha)

    for path in ("/dashboard/", "/dashboard/team/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert SUSPENDED_MESSAGE.encode() in response.content


def test_suspended_company_login_post_does_not_sign_in(alpha: Company) -> None:
    suspend(alpha)
    client = Client(HTTP_HOST=host(alpha))

    response = client.post("/accounts/login/", {"login": owner(alpha).email, "password": PASSWORD})

    assert response.status_code == 403
    assert "chapi_session" not in response.cookies


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/conversations/", {}),
        ("/v1/", {}),
        ("/dashboard/", {"Accept": "application/json"}),
        ("/accounts/login/", {"Accept": "application/json, text/plain, */*"}),
    ],
)
def test_suspended_company_api_answers_403_json(
    alpha: Company, path: str, headers: dict[str, str]
) -> None:
    suspend(alpha)

    response = Client(HTTP_HOST=host(alpha)).get(path, headers=headers)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == SUSPENDED_JSON


def test_suspended_company_host_still_answers_healthz(alpha: Company) -> None:
    suspend(alpha)

    response = Client(HTTP_HOST=host(alpha)).get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_reactivation_restores_access(alpha: Company) -> None:
    client = logged_in(alpha, owner(alpha))
    suspend(alpha)
    assert client.get("/dashboard/").status_code == 403

    company_reactivate(company=alpha, actor=SYSTEM)

    assert client.get("/dashboard/").status_code == 200
    assert Client(HTTP_HOST=host(alpha)).get("/accounts/login/").status_code == 200
    alpha.refresh_from_db()
    assert (alpha.suspended_at, alpha.suspended_reason) == (None, "")


def test_suspending_one_company_leaves_the_other_untouched(alpha: Company, beta: Company) -> None:
    beta_client = logged_in(beta, owner(beta))
    suspend(alpha)

    assert beta_client.get("/dashboard/").status_code == 200
    assert Client(HTTP_HOST=host(beta)).get("/accounts/login/").status_code == 200
    beta.refresh_from_db()
    assert beta.suspended_at is None
    assert audit_actions(beta) == ["company.create"]


def test_suspension_is_recorded_once(alpha: Company) -> None:
    suspend(alpha)
    first = alpha.suspended_at
    suspend(alpha)

    alpha.refresh_from_db()
    assert alpha.suspended_at == first
    assert alpha.suspended_reason == "Unpaid invoices"
    assert audit_actions(alpha) == ["company.create", "company.suspend"]


def test_the_public_tenant_cannot_be_suspended(db: None) -> None:
    public = public_company_ensure()

    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        company_suspend(company=public, actor=SYSTEM, reason="oops")

    assert excinfo.value.messages == ["The platform itself cannot be suspended."]
    public.refresh_from_db()
    assert public.suspended_at is None
    assert Client(HTTP_HOST=settings.ROOT_DOMAIN).get("/").status_code == 200


# --- Through the platform admin ----------------------------------------------------------------


def test_staff_suspend_a_company_from_the_platform_admin(
    staff_client: Client, staff_user: User, alpha: Company, beta: Company
) -> None:
    response = staff_client.post(
        "/admin/tenants/company/", {"action": "suspend", "_selected_action": [alpha.pk]}
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/tenants/company/"
    alpha.refresh_from_db()
    assert alpha.suspended_at is not None
    assert alpha.suspended_reason == "Suspended by platform staff"
    with tenant_context(alpha):
        entry = AuditLog.objects.get(action="company.suspend")
        assert entry.actor_kind == AuditLog.ActorKind.STAFF
        assert entry.actor_id == staff_user.pk
        assert entry.actor_email == "staff@platform.example.com"
        assert entry.ip_address == "127.0.0.1"
        assert entry.object_id == str(alpha.pk)
        assert entry.changes == {"reason": [None, "Suspended by platform staff"]}
    assert Client(HTTP_HOST=host(alpha)).get("/accounts/login/").status_code == 403
    beta.refresh_from_db()
    assert beta.suspended_at is None
    assert audit_actions(beta) == ["company.create"]


def test_staff_reactivate_a_company_from_the_platform_admin(
    staff_client: Client, staff_user: User, alpha: Company
) -> None:
    suspend(alpha)

    response = staff_client.post(
        "/admin/tenants/company/", {"action": "reactivate", "_selected_action": [alpha.pk]}
    )

    assert response.status_code == 302
    alpha.refresh_from_db()
    assert (alpha.suspended_at, alpha.suspended_reason) == (None, "")
    with tenant_context(alpha):
        entry = AuditLog.objects.get(action="company.reactivate")
        assert (entry.actor_kind, entry.actor_id, entry.actor_email) == (
            AuditLog.ActorKind.STAFF,
            staff_user.pk,
            "staff@platform.example.com",
        )
    assert Client(HTTP_HOST=host(alpha)).get("/accounts/login/").status_code == 200


def test_the_platform_admin_cannot_suspend_the_public_tenant(staff_client: Client) -> None:
    public = public_company_ensure()

    staff_client.post(
        "/admin/tenants/company/", {"action": "suspend", "_selected_action": [public.pk]}
    )

    public.refresh_from_db()
    assert public.suspended_at is None
    assert Client(HTTP_HOST=settings.ROOT_DOMAIN).get("/").status_code == 200
