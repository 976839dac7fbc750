"""A company's admins set the web origins allowed to call the API from browsers."""

from __future__ import annotations

from django.test import Client
from django_tenants.utils import tenant_context

from apps.api import cors
from apps.api.cors import company_origins
from apps.audit.models import AuditLog
from apps.tenants.models import Company
from tests.conftest import logged_in, member, owner

URL_TEMPLATE = "/admin/tenants/companysettings/{pk}/change/"


def _post(client: Client, company: Company, origins: str):  # type: ignore[no-untyped-def]
    return client.post(
        URL_TEMPLATE.format(pk=company.pk),
        {"name": company.name, "language": company.language, "allowed_origins": origins},
    )


def test_an_owner_sets_the_allowed_origins_and_they_are_audited(alpha: Company) -> None:
    company_origins()  # a cached copy exists
    client = logged_in(alpha, owner(alpha))

    response = _post(client, alpha, "https://www.alpha.example\nHTTP://Shop.Alpha.example:8443/\n")

    assert response.status_code == 302
    alpha.refresh_from_db()
    assert alpha.allowed_origins == ["https://www.alpha.example", "http://shop.alpha.example:8443"]
    with tenant_context(alpha):
        entry = AuditLog.objects.get(action="company.update")
    assert entry.changes == {
        "allowed_origins": [[], ["https://www.alpha.example", "http://shop.alpha.example:8443"]]
    }
    # This process's copy is dropped (other processes refresh within a minute).
    assert cors._cache == (0.0, frozenset())


def test_an_origin_with_a_path_is_refused(alpha: Company) -> None:
    client = logged_in(alpha, owner(alpha))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"

    response = _post(client, alpha, "https://www.alpha.example/shop")

    assert response.status_code == 200
    assert b"is not an origin like https://www.example.com" in response.content
    alpha.refresh_from_db()
    assert alpha.allowed_origins == []


def test_an_agent_cannot_change_the_allowed_origins(alpha: Company) -> None:
    client = logged_in(alpha, member(alpha, "agent"))

    response = _post(client, alpha, "https://evil.example")

    assert response.status_code in {302, 403}
    alpha.refresh_from_db()
    assert alpha.allowed_origins == []


def test_alphas_admin_cannot_change_betas_origins(alpha: Company, beta: Company) -> None:
    client = logged_in(alpha, owner(alpha))

    response = _post(client, beta, "https://evil.example")

    assert response.status_code in {302, 404}
    beta.refresh_from_db()
    assert beta.allowed_origins == []
