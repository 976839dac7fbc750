"""Signup on the public host, and the one-time handoff that logs the new owner in on their
company's host."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context, schema_exists, tenant_context

from apps.accounts.handoff import handoff_token_issue
from apps.accounts.models import Membership, Role, User
from apps.audit.models import AuditLog
from apps.tenants.models import Company, Domain
from apps.tenants.validators import slug_to_schema_name
from tests.conftest import PASSWORD, host, owner

HANDOFF_URL = re.compile(
    r"^http://(?P<host>[a-z0-9-]+\.localhost)/auth/handoff/\?token=(?P<token>\S+)$"
)
SIGNUP_FIELDS = ("company_name", "subdomain", "name", "email", "language", "password")
REQUIRED = "This field is required."
INVALID_SLUG = (
    "Use only lowercase letters, digits and single hyphens, "
    "starting and ending with a letter or digit."
)


@pytest.fixture
def signup_client(db: None) -> Client:
    """A visitor of the public host whose browser asks for English (error messages below are
    asserted in English; the public site otherwise defaults to Spanish)."""
    return Client(HTTP_HOST=settings.ROOT_DOMAIN, HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def gone_after_test(django_db_blocker: Any) -> Iterator[list[str]]:
    """Slugs whose company row and schema must be gone once the test's transaction is rolled
    back: proves that signups in tests leave nothing behind (PostgreSQL DDL is transactional).

    Request it before any database fixture so it is torn down after the rollback."""
    slugs: list[str] = []
    yield slugs
    with django_db_blocker.unblock():
        assert not connection.in_atomic_block
        connection.set_schema_to_public()  # type: ignore[attr-defined]
        for slug in slugs:
            assert not schema_exists(slug_to_schema_name(slug)), slug
            assert not Company.objects.filter(slug=slug).exists(), slug


def signup_data(slug: str = "acme", **overrides: str) -> dict[str, str]:
    data = {
        "company_name": "Acme Seguros",
        "subdomain": slug,
        "name": "Ana Pérez",
        "email": f"ana@{slug}.example.com",
        "language": "en",
        "password": PASSWORD,
    }
    data.update(overrides)
    return data


def assert_not_created(slug: str, companies_before: int) -> None:
    assert Company.objects.count() == companies_before
    assert not Company.objects.filter(slug=slug).exists()
    assert not Domain.objects.filter(domain=f"{slug}.{settings.ROOT_DOMAIN}").exists()
    assert not schema_exists(slug_to_schema_name(slug))


def form_errors(response: Any) -> dict[str, list[str]]:
    return dict(response.context["form"].errors)


# --- Happy path ------------------------------------------------------------------------------


def test_signup_creates_company_schema_host_owner_and_audit_entry(
    gone_after_test: list[str], signup_client: Client
) -> None:
    gone_after_test.append("acme")

    response = signup_client.post("/signup/", signup_data())

    assert response.status_code == 302
    match = HANDOFF_URL.match(response["Location"])
    assert match is not None, response["Location"]
    assert match["host"] == "acme.localhost"
    company = Company.objects.get(slug="acme")
    assert company.schema_name == "t_acme"
    assert company.name == "Acme Seguros"
    assert company.owner_email == "ana@acme.example.com"
    assert company.language == "en"
    assert company.suspended_at is None
    assert schema_exists("t_acme")
    assert list(Domain.objects.filter(tenant=company).values_list("domain", "is_primary")) == [
        ("acme.localhost", True)
    ]
    with tenant_context(company):
        user = User.objects.get()
        assert user.email == "ana@acme.example.com"
        assert user.name == "Ana Pérez"
        assert user.check_password(PASSWORD)
        assert Membership.objects.get().role == Role.OWNER
        address = EmailAddress.objects.get()
        assert (address.email, address.primary, address.verified) == (user.email, True, False)
        entry = AuditLog.objects.get()
        assert entry.action == "company.create"
        assert entry.actor_kind == AuditLog.ActorKind.SYSTEM
        assert entry.ip_address == "127.0.0.1"
        assert entry.object_id == str(company.pk)
        assert entry.changes == {
            "slug": [None, "acme"],
            "owner_email": [None, "ana@acme.example.com"],
        }


def test_signup_handoff_logs_the_owner_in_and_sends_the_verification_email(
    gone_after_test: list[str], signup_client: Client, mailoutbox: list[Any]
) -> None:
    gone_after_test.append("acme")
    location = signup_client.post("/signup/", signup_data())["Location"]
    url = urlsplit(location)
    company_client = Client(HTTP_HOST=url.netloc, HTTP_ACCEPT_LANGUAGE="en")

    response = company_client.get(f"{url.path}?{url.query}")

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    dashboard = company_client.get("/dashboard/")
    assert dashboard.status_code == 200
    assert dashboard.context["user"].email == "ana@acme.example.com"
    assert dashboard.context["company"].slug == "acme"
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == ["ana@acme.example.com"]
    links = re.findall(r"https?://\S+", email.body)
    assert len(links) == 1
    link = urlsplit(links[0])
    assert (link.scheme, link.netloc) == ("http", "acme.localhost")
    assert link.path.startswith("/accounts/confirm-email/")

    # The link opens on the company host, where the account lives, and verifies the address.
    assert company_client.post(link.path).status_code == 302
    with tenant_context(Company.objects.get(slug="acme")):
        assert EmailAddress.objects.get(email="ana@acme.example.com").verified is True


def test_signup_lowercases_the_subdomain(gone_after_test: list[str], signup_client: Client) -> None:
    gone_after_test.append("acme-co")

    response = signup_client.post("/signup/", signup_data("Acme-CO", email="ana@acme.example.com"))

    assert response.status_code == 302
    assert response["Location"].startswith("http://acme-co.localhost/auth/handoff/?token=")
    company = Company.objects.get(slug="acme-co")
    assert company.schema_name == "t_acme_co"
    assert Domain.objects.get(tenant=company).domain == "acme-co.localhost"


def test_signup_redirect_keeps_the_port_the_visitor_uses(
    gone_after_test: list[str], db: None
) -> None:
    gone_after_test.append("acme")
    client = Client(HTTP_HOST="localhost:8000")

    response = client.post("/signup/", signup_data(), SERVER_PORT="8000")

    assert response.status_code == 302
    assert response["Location"].startswith("http://acme.localhost:8000/auth/handoff/?token=")


def test_signup_redirect_uses_the_port_of_the_host_header_not_the_server_port(
    gone_after_test: list[str], db: None
) -> None:
    # In production uvicorn listens on 8000 behind a proxy on 443: the visitor's port is the
    # one in the Host header, not the port the app server happens to listen on.
    gone_after_test.append("acme")
    client = Client(HTTP_HOST=settings.ROOT_DOMAIN)

    response = client.post("/signup/", signup_data(), SERVER_PORT="8000")

    assert response.status_code == 302
    assert response["Location"].startswith("http://acme.localhost/auth/handoff/?token=")


def test_signup_page_shows_the_form(signup_client: Client) -> None:
    response = signup_client.get("/signup/")
    assert response.status_code == 200
    assert tuple(response.context["form"].fields) == SIGNUP_FIELDS


# --- Handoff token ---------------------------------------------------------------------------


def handoff_path(token: str) -> str:
    return f"/auth/handoff/?token={token}"


def test_handoff_token_works_only_once(alpha: Company) -> None:
    token = handoff_token_issue(schema_name=alpha.schema_name, user_id=owner(alpha).pk)

    first = Client(HTTP_HOST=host(alpha)).get(handoff_path(token))
    second_client = Client(HTTP_HOST=host(alpha))
    second = second_client.get(handoff_path(token))

    assert first.status_code == 302
    assert first["Location"] == "/dashboard/"
    assert second.status_code == 302
    assert second["Location"] == "/accounts/login/"
    assert second_client.get("/dashboard/")["Location"].startswith("/accounts/login/")


def test_handoff_token_of_one_company_does_not_work_on_another(
    alpha: Company, beta: Company
) -> None:
    token = handoff_token_issue(schema_name=alpha.schema_name, user_id=owner(alpha).pk)
    beta_client = Client(HTTP_HOST=host(beta))

    response = beta_client.get(handoff_path(token))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert beta_client.get("/dashboard/")["Location"].startswith("/accounts/login/")
    # Trying it on the wrong host does not use it up.
    assert Client(HTTP_HOST=host(alpha)).get(handoff_path(token))["Location"] == "/dashboard/"


def craft_token(alpha: Company, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "aud": "chapi:signup-handoff",
        "sub": str(owner(alpha).pk),
        "schema": alpha.schema_name,
        "jti": "test-token-id",
        "iat": now,
        "exp": now + 60,
    }
    payload.update(claims)
    secret = payload.pop("secret", settings.JWT_SECRET)
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iat": int(time.time()) - 300, "exp": int(time.time()) - 1}, id="expired"),
        pytest.param({"secret": "not-the-jwt-secret-of-this-platform-xx"}, id="wrong-secret"),
        pytest.param({"aud": "someone-else"}, id="wrong-audience"),
    ],
)
def test_handoff_rejects_an_invalid_token(alpha: Company, claims: dict[str, Any]) -> None:
    client = Client(HTTP_HOST=host(alpha))

    response = client.get(handoff_path(craft_token(alpha, **claims)))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get("/dashboard/")["Location"].startswith("/accounts/login/")


def test_a_well_formed_crafted_token_is_accepted(alpha: Company) -> None:
    # Guards the negative cases above: they fail for the claim they change, nothing else.
    response = Client(HTTP_HOST=host(alpha)).get(handoff_path(craft_token(alpha)))
    assert response["Location"] == "/dashboard/"


# --- Errors: each one is shown on the form and nothing is created ----------------------------


def test_signup_rejects_a_taken_subdomain(signup_client: Client, alpha: Company) -> None:
    before = Company.objects.count()

    response = signup_client.post("/signup/", signup_data("alpha", email="new@example.com"))

    assert response.status_code == 400
    assert form_errors(response) == {"subdomain": ["This subdomain is already taken."]}
    assert Company.objects.count() == before
    assert not Company.objects.filter(owner_email="new@example.com").exists()


@pytest.mark.parametrize(
    ("subdomain", "message"),
    [
        ("ac_me", INVALID_SLUG),
        ("-acme", INVALID_SLUG),
        ("acme-", INVALID_SLUG),
        ("ac--me", INVALID_SLUG),
        ("acme.co", INVALID_SLUG),
        ("ab", "The subdomain must have at least 3 characters."),
        ("a" * 41, "Ensure this value has at most 40 characters (it has 41)."),
    ],
)
def test_signup_rejects_an_invalid_subdomain(
    signup_client: Client, subdomain: str, message: str
) -> None:
    before = Company.objects.count()

    response = signup_client.post("/signup/", signup_data(subdomain, email="ana@example.com"))

    assert response.status_code == 400
    assert form_errors(response) == {"subdomain": [message]}
    assert_not_created(subdomain.lower(), before)


@pytest.mark.parametrize("subdomain", ["www", "api", "admin", "static", "WWW"])
def test_signup_rejects_a_reserved_subdomain(signup_client: Client, subdomain: str) -> None:
    before = Company.objects.count()

    response = signup_client.post("/signup/", signup_data(subdomain, email="ana@example.com"))

    assert response.status_code == 400
    assert form_errors(response) == {"subdomain": ["This subdomain is reserved."]}
    assert_not_created(subdomain.lower(), before)


@pytest.mark.parametrize(
    ("password", "messages"),
    [
        ("short1x!", ["This password is too short. It must contain at least 10 characters."]),
        ("8405719263551", ["This password is entirely numeric."]),
        ("password1234", ["This password is too common."]),
    ],
)
def test_signup_rejects_a_weak_password(
    signup_client: Client, password: str, messages: list[str]
) -> None:
    before = Company.objects.count()

    response = signup_client.post("/signup/", signup_data(password=password))

    assert response.status_code == 400
    assert form_errors(response) == {"password": messages}
    assert_not_created("acme", before)


@pytest.mark.parametrize("email", ["owner@alpha.example.com", "Owner@ALPHA.example.com"])
def test_signup_rejects_an_email_that_already_created_a_company(
    signup_client: Client, alpha: Company, email: str
) -> None:
    before = Company.objects.count()

    response = signup_client.post("/signup/", signup_data(email=email))

    assert response.status_code == 400
    assert form_errors(response) == {
        "email": [
            "A company was already created with this email. Log in at your company's "
            "address, or use another email."
        ]
    }
    assert_not_created("acme", before)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(dict.fromkeys(SIGNUP_FIELDS, ""), id="all-blank"),
        # A POST without any field (a script, a stripped form) must not be taken for a GET.
        pytest.param({}, id="no-fields"),
    ],
)
def test_signup_requires_every_field(signup_client: Client, body: dict[str, str]) -> None:
    before = Company.objects.count()

    response = signup_client.post("/signup/", body)

    assert response.status_code == 400
    assert form_errors(response) == {field: [REQUIRED] for field in SIGNUP_FIELDS}
    assert Company.objects.count() == before


def test_signup_rejects_an_unsupported_language(signup_client: Client) -> None:
    before = Company.objects.count()

    response = signup_client.post("/signup/", signup_data(language="fr"))

    assert response.status_code == 400
    assert form_errors(response) == {
        "language": ["Select a valid choice. fr is not one of the available choices."]
    }
    assert_not_created("acme", before)


@pytest.mark.parametrize("missing", ["company_name", "name", "email", "password"])
def test_signup_with_one_field_missing_creates_nothing(signup_client: Client, missing: str) -> None:
    before = Company.objects.count()

    response = signup_client.post("/signup/", signup_data(**{missing: ""}))

    assert response.status_code == 400
    assert form_errors(response) == {missing: [REQUIRED]}
    assert_not_created("acme", before)


# --- Rate limit ------------------------------------------------------------------------------


def test_the_eleventh_signup_from_one_address_within_the_hour_is_refused(
    gone_after_test: list[str], signup_client: Client
) -> None:
    gone_after_test.extend(["acme", "acme-two"])
    # Nine signups already made from this address (the counter of apps/tenants/views.py).
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        cache.set("signup-rate:127.0.0.1", 9, timeout=3600)

    tenth = signup_client.post("/signup/", signup_data("acme"))
    before = Company.objects.count()
    eleventh = signup_client.post(
        "/signup/", signup_data("acme-two", email="bob@acme-two.example.com")
    )

    assert tenth.status_code == 302
    assert eleventh.status_code == 429
    assert form_errors(eleventh) == {
        "__all__": ["Too many signups from your network. Try again in an hour."]
    }
    assert_not_created("acme-two", before)


def test_the_signup_limit_is_per_address(gone_after_test: list[str], signup_client: Client) -> None:
    gone_after_test.append("acme")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        cache.set("signup-rate:10.0.0.7", 10, timeout=3600)

    response = signup_client.post("/signup/", signup_data("acme"))

    assert response.status_code == 302
    assert Company.objects.filter(slug="acme").exists()


def test_a_signup_refused_for_a_weak_password_does_not_count_against_the_limit(
    gone_after_test: list[str], signup_client: Client
) -> None:
    # A refused attempt is not a signup: a refused subdomain or email does not count, so a
    # refused password must not either.
    gone_after_test.append("acme")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        cache.set("signup-rate:127.0.0.1", 9, timeout=3600)

    refused = signup_client.post("/signup/", signup_data(password="password1234"))
    tenth = signup_client.post("/signup/", signup_data())

    assert refused.status_code == 400
    assert tenth.status_code == 302
    assert Company.objects.filter(slug="acme").exists()
