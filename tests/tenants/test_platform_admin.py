"""The platform admin on the public host: companies, for platform staff only."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tenants.models import Company
from tests.conftest import PASSWORD

BACKEND = "django.contrib.auth.backends.ModelBackend"
COMPANIES = "/admin/tenants/company/"


def public_client_for(user: User) -> Client:
    client = Client(HTTP_HOST=settings.ROOT_DOMAIN, HTTP_ACCEPT_LANGUAGE="en")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        client.force_login(user, backend=BACKEND)
    return client


@pytest.fixture
def staff_client(staff_user: User) -> Client:
    return public_client_for(staff_user)


@pytest.fixture
def public_user(db: None) -> User:
    """An account in the public schema without staff rights."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return User.objects.create_user("someone@example.com", PASSWORD)


def test_staff_see_the_companies_without_the_public_tenant(
    staff_client: Client, alpha: Company, beta: Company
) -> None:
    response = staff_client.get(COMPANIES)

    assert response.status_code == 200
    slugs = {company.slug for company in response.context["cl"].result_list}
    assert {"alpha", "beta"} <= slugs
    assert "public" not in slugs
    assert (
        response.context["cl"].result_count
        == Company.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).count()
    )
    assert b"owner@alpha.example.com" in response.content
    assert b"owner@beta.example.com" in response.content


def test_staff_can_open_a_company(staff_client: Client, alpha: Company) -> None:
    response = staff_client.get(f"{COMPANIES}{alpha.pk}/change/")

    assert response.status_code == 200
    assert response.context["original"] == alpha


def test_staff_cannot_open_the_public_tenant(staff_client: Client) -> None:
    public = Company.objects.get(schema_name=settings.PUBLIC_SCHEMA_NAME)

    response = staff_client.get(f"{COMPANIES}{public.pk}/change/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_anonymous_visitors_are_sent_to_the_allauth_login(client_public: Client) -> None:
    response = client_public.get(COMPANIES, follow=True)

    assert response.redirect_chain == [
        ("/admin/login/?next=/admin/tenants/company/", 302),
        ("/accounts/login/?next=%2Fadmin%2Ftenants%2Fcompany%2F", 302),
    ]
    assert response.status_code == 200
    assert response.context["user"].is_authenticated is False


def test_a_public_user_without_staff_rights_gets_403(public_user: User) -> None:
    client = public_client_for(public_user)

    response = client.get(COMPANIES, follow=True)

    assert response.status_code == 403
    assert b"owner@alpha.example.com" not in response.content


def test_a_public_user_without_staff_rights_cannot_suspend(
    public_user: User, alpha: Company
) -> None:
    client = public_client_for(public_user)

    client.post(COMPANIES, {"action": "suspend", "_selected_action": [alpha.pk]}, follow=True)

    alpha.refresh_from_db()
    assert alpha.suspended_at is None


def test_there_is_no_add_company(staff_client: Client) -> None:
    before = Company.objects.count()

    listing = staff_client.get(COMPANIES)
    form = staff_client.get(f"{COMPANIES}add/")
    post = staff_client.post(f"{COMPANIES}add/", {"name": "New", "slug": "new-co"})

    assert listing.context["has_add_permission"] is False
    assert b'href="/admin/tenants/company/add/"' not in listing.content
    assert form.status_code == 403
    assert post.status_code == 403
    assert Company.objects.count() == before


def test_there_is_no_delete_company(staff_client: Client, alpha: Company) -> None:
    listing = staff_client.get(COMPANIES)
    actions = [name for name, _label in listing.context["action_form"].fields["action"].choices]
    page = staff_client.get(f"{COMPANIES}{alpha.pk}/delete/")
    post = staff_client.post(f"{COMPANIES}{alpha.pk}/delete/", {"post": "yes"})
    bulk = staff_client.post(
        COMPANIES, {"action": "delete_selected", "_selected_action": [alpha.pk], "post": "yes"}
    )

    assert actions == ["", "suspend", "reactivate"]
    assert page.status_code == 403
    assert post.status_code == 403
    assert bulk.status_code == 302
    assert Company.objects.filter(pk=alpha.pk).exists()
