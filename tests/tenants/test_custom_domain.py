"""A company can be reached on a custom domain of its own."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.tenants.models import Company, Domain
from tests.conftest import logged_in, owner


@pytest.fixture
def custom_domain(alpha: Company, settings) -> str:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "chat.alpha-seguros.example"]
    Domain.objects.create(domain="chat.alpha-seguros.example", tenant=alpha, is_primary=False)
    return "chat.alpha-seguros.example"


def test_a_custom_domain_routes_to_its_company(alpha: Company, custom_domain: str) -> None:
    client = logged_in(alpha, owner(alpha))
    client.defaults["HTTP_HOST"] = custom_domain

    response = client.get("/dashboard/")

    assert response.status_code == 200
    assert b"Alpha" in response.content


def test_a_custom_domain_not_listed_in_allowed_hosts_is_refused(alpha: Company) -> None:
    Domain.objects.create(domain="unlisted.example", tenant=alpha, is_primary=False)

    response = Client(HTTP_HOST="unlisted.example").get("/accounts/login/")

    assert response.status_code in {400, 404}
