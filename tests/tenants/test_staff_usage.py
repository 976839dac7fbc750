"""The staff's usage page on the public host: every company's figures from the daily usage
the analytics rollups keep; staff only, never on a company's host."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tenants.models import Company, CompanyDailyUsage
from tests.conftest import PASSWORD, logged_in, owner
from tests.tenants.test_platform_admin import public_client_for

USAGE = "/staff/usage/"


@pytest.fixture
def usage(alpha: Company, beta: Company) -> None:
    today = timezone.now().date()
    CompanyDailyUsage.objects.create(company=alpha, day=today, conversations=5, visitor_messages=12,
                                     replies=10, errors=1, input_tokens=900, output_tokens=300,
                                     cost=Decimal("0.0125"))  # fmt: skip
    CompanyDailyUsage.objects.create(company=alpha, day=today - timedelta(days=20),
                                     conversations=100, visitor_messages=400)  # fmt: skip
    CompanyDailyUsage.objects.create(company=beta, day=today, conversations=2, visitor_messages=30,
                                     replies=4)  # fmt: skip


def row(page: str, slug: str) -> str:
    return page.split(f'data-slug="{slug}"', 1)[1].split("</tr>", 1)[0]


def test_staff_see_every_companys_usage_for_the_period(
    usage: None, staff_user: User, alpha: Company, beta: Company
) -> None:
    client = public_client_for(staff_user)

    page = client.get(USAGE).content.decode()

    assert page.index('data-slug="beta"') < page.index('data-slug="alpha"')  # by messages
    assert 'data-value="5"' in row(page, alpha.slug) and 'data-value="12"' in row(page, alpha.slug)
    assert "900 / 300" in row(page, alpha.slug) and "0.0125" in row(page, alpha.slug)
    assert "(10%)" in row(page, alpha.slug)  # 1 error in 10 replies
    assert 'data-value="2"' in row(page, beta.slug)
    month = client.get(USAGE, {"days": "30"}).content.decode()
    assert 'data-value="105"' in row(month, alpha.slug)
    assert 'data-value="412"' in row(month, alpha.slug)


def test_only_staff_on_the_public_host(usage: None, alpha: Company) -> None:
    anonymous = Client(HTTP_HOST=settings.ROOT_DOMAIN)
    assert anonymous.get(USAGE).status_code == 302
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        someone = User.objects.create_user("someone@example.com", PASSWORD)
    response = public_client_for(someone).get(USAGE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    # A company's owner, on the company's host, has no such page.
    assert logged_in(alpha, owner(alpha)).get(USAGE).status_code == 404
