"""Shared fixtures: two companies (alpha, beta) created once per test database and reused.

Each test runs inside a transaction that is rolled back, in every schema. Code that touches a
company's data enters its schema explicitly (`tenant_context`); requests made with the
`client_alpha`/`client_beta` clients are routed by their Host header, as in production.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context, schema_exists, tenant_context

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.tenants.management.commands.setup_platform import template_schema_migrate
from apps.tenants.models import Company
from apps.tenants.services import company_create, public_company_ensure
from apps.tenants.validators import slug_to_schema_name
from chapi.celery import app as celery_app

PASSWORD = "correct-horse-battery-staple"
ALPHA, BETA = "alpha", "beta"


def owner_email(slug: str) -> str:
    return f"owner@{slug}.example.com"


def company_ensure(slug: str) -> Company:
    """The company `slug`, created (with its owner) if missing. Robust to a flushed public
    schema whose company schemas survived: the orphan schema is dropped and made again."""
    company = Company.objects.filter(slug=slug).first()
    if company is not None:
        return company
    schema = slug_to_schema_name(slug)
    if schema_exists(schema):
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return company_create(
        name=slug.title(),
        slug=slug,
        owner_email=owner_email(slug),
        owner_name=f"{slug.title()} Owner",
        owner_password=PASSWORD,
    ).company


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> None:
    if not str(connection.settings_dict["NAME"]).startswith("test_"):
        # No collected test asked for a database, so pytest-django made none: never write the
        # test companies into the configured (development) database.
        return
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        template_schema_migrate()
        public_company_ensure()
        company_ensure(ALPHA)
        company_ensure(BETA)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    # A pipeline hook that raises fails its test instead of being logged and skipped.
    from apps.conversations.services import ReplyHooks
    from apps.leads.services import LeadHooks

    ReplyHooks.strict = LeadHooks.strict = True


@pytest.fixture(autouse=True)
def _public_schema_and_clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    connection.set_schema_to_public()


@pytest.fixture
def alpha(db: None) -> Company:
    return company_ensure(ALPHA)


@pytest.fixture
def beta(db: None) -> Company:
    return company_ensure(BETA)


def assistant_profile_form(**overrides: str) -> dict[str, str]:
    """Every field of the company admin's assistant profile form, with the defaults."""
    return {
        "bot_name": "CHAPI",
        "company_display_name": "",
        "welcome_message": "¡Hola! ¿Cómo puedo ayudarte?",
        "languages": '["es", "en"]',
        "industry_template": "generico",
        "persona": "",
        "system_prompt": "",
        "tone": "",
        "goals": "[]",
        "topics_to_avoid": "",
        "extra_guardrails": "",
        "provider": "auto",
        "model": "",
        "max_tokens": "",
        "temperature": "0.70",
        "api_base_url": "",
        "api_key_0": "",
        "monthly_token_budget": "0",
        "history_token_limit": "3000",
        **overrides,
    }


def host(company: Company) -> str:
    return f"{company.slug}.{settings.ROOT_DOMAIN}"


@pytest.fixture
def client_alpha(alpha: Company) -> Client:
    return Client(HTTP_HOST=host(alpha))


@pytest.fixture
def client_beta(beta: Company) -> Client:
    return Client(HTTP_HOST=host(beta))


@pytest.fixture
def client_public(db: None) -> Client:
    return Client(HTTP_HOST=settings.ROOT_DOMAIN)


def member(company: Company, role: str, email: str | None = None) -> User:
    """A new team member of `company` with `role` and the shared test password."""
    with tenant_context(company):
        return user_create(
            email=email or f"{role}-{User.objects.count()}@{company.slug}.example.com",
            name=f"{role.title()} Member",
            password=PASSWORD,
            role=role,
            email_verified=True,
        )


def owner(company: Company) -> User:
    with tenant_context(company):
        return User.objects.get(email=owner_email(company.slug))


def logged_in(company: Company, user: User) -> Client:
    client = Client(HTTP_HOST=host(company))
    with tenant_context(company):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def owner_alpha(alpha: Company) -> User:
    return owner(alpha)


@pytest.fixture
def owner_client_alpha(alpha: Company, owner_alpha: User) -> Client:
    return logged_in(alpha, owner_alpha)


@pytest.fixture
def staff_user(db: None) -> User:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return User.objects.create_superuser("staff@platform.example.com", PASSWORD)


__all__ = ["PASSWORD", "Role", "host", "logged_in", "member", "owner"]
