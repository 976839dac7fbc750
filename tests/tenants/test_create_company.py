"""`manage.py create_company`: one JSON object on success, a CommandError naming the problem
otherwise."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from apps.accounts.models import Membership, Role, User
from apps.audit.models import AuditLog
from apps.tenants.models import Company, Domain
from tests.conftest import PASSWORD

TAKEN_EMAIL = (
    "A company was already created with this email. Log in at your company's address, "
    "or use another email."
)


def create_company(*args: str) -> str:
    out = io.StringIO()
    call_command("create_company", *args, stdout=out)
    return out.getvalue()


def base_args(slug: str = "acme", email: str = "ana@acme.example.com") -> list[str]:
    return ["--name", "Acme Seguros", "--slug", slug, "--owner-email", email]


def assert_not_created(slug: str, companies_before: int) -> None:
    assert Company.objects.count() == companies_before
    assert not Company.objects.filter(slug=slug).exists()
    assert not Domain.objects.filter(domain=f"{slug}.{settings.ROOT_DOMAIN}").exists()
    assert not schema_exists(f"t_{slug.replace('-', '_')}")


def test_create_company_prints_one_json_object(db: None) -> None:
    out = create_company(
        *base_args(email="Ana@Acme.example.com"),
        "--owner-name", "Ana Pérez", "--password", PASSWORD, "--language", "en",
    )  # fmt: skip

    assert out.count("\n") == 1
    assert json.loads(out) == {
        "slug": "acme",
        "schema": "t_acme",
        "domain": "acme.localhost",
        "owner_email": "ana@acme.example.com",
    }
    company = Company.objects.get(slug="acme")
    assert (company.name, company.language, company.owner_email) == (
        "Acme Seguros",
        "en",
        "ana@acme.example.com",
    )
    assert schema_exists("t_acme")
    with tenant_context(company):
        user = User.objects.get()
        assert (user.email, user.name) == ("ana@acme.example.com", "Ana Pérez")
        assert user.check_password(PASSWORD)
        assert Membership.objects.get(user=user).role == Role.OWNER
        entry = AuditLog.objects.get()
        assert (entry.action, entry.actor_kind, entry.ip_address) == (
            "company.create",
            AuditLog.ActorKind.SYSTEM,
            None,
        )


def test_without_a_password_the_owner_has_an_unusable_password(db: None) -> None:
    out = create_company(*base_args())

    assert json.loads(out)["owner_email"] == "ana@acme.example.com"
    company = Company.objects.get(slug="acme")
    assert company.language == "es"
    with tenant_context(company):
        user = User.objects.get()
        assert user.has_usable_password() is False
        assert user.check_password("") is False


def test_create_company_lowercases_the_slug(db: None) -> None:
    out = create_company(*base_args(slug="Acme-Co"))

    assert json.loads(out)["schema"] == "t_acme_co"
    assert Company.objects.filter(slug="acme-co").exists()


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("alpha", "slug: This subdomain is already taken."),
        ("www", "slug: This subdomain is reserved."),
        ("admin", "slug: This subdomain is reserved."),
        (
            "acme_co",
            "slug: Use only lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit.",
        ),
        ("ab", "slug: The subdomain must have at least 3 characters."),
        ("a" * 41, "slug: The subdomain can have at most 40 characters."),
    ],
)
def test_create_company_rejects_a_bad_slug(alpha: Company, slug: str, message: str) -> None:
    before = Company.objects.count()

    with pytest.raises(CommandError) as excinfo:
        create_company(*base_args(slug=slug))

    assert str(excinfo.value) == f"Cannot create the company: {message}"
    assert Company.objects.count() == before
    assert not Company.objects.filter(owner_email="ana@acme.example.com").exists()
    if slug != "alpha":
        assert_not_created(slug, before)


def test_create_company_rejects_an_owner_email_that_already_created_a_company(
    alpha: Company,
) -> None:
    before = Company.objects.count()

    with pytest.raises(CommandError) as excinfo:
        create_company(*base_args(email="OWNER@alpha.example.com"))

    assert str(excinfo.value) == f"Cannot create the company: owner_email: {TAKEN_EMAIL}"
    assert_not_created("acme", before)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short1x!", "This password is too short. It must contain at least 10 characters."),
        ("8405719263551", "This password is entirely numeric."),
        ("password1234", "This password is too common."),
    ],
)
def test_create_company_rejects_a_weak_password(db: None, password: str, problem: str) -> None:
    before = Company.objects.count()

    with pytest.raises(CommandError) as excinfo:
        create_company(*base_args(), "--password", password)

    assert str(excinfo.value) == f"Cannot create the company: owner_password: {problem}"
    assert_not_created("acme", before)


def test_create_company_names_every_problem_at_once(alpha: Company) -> None:
    before = Company.objects.count()

    with pytest.raises(CommandError) as excinfo:
        create_company(
            "--name", " ", "--slug", "www", "--owner-email", "owner@alpha.example.com",
            "--password", "short1x!",
        )  # fmt: skip

    assert str(excinfo.value) == (
        "Cannot create the company: slug: This subdomain is reserved.; "
        f"owner_email: {TAKEN_EMAIL}; name: The company needs a name.; "
        "owner_password: This password is too short. It must contain at least 10 characters."
    )
    assert_not_created("www", before)


def test_create_company_from_the_shell_exits_non_zero_with_the_message_on_stderr(
    db: None,
) -> None:
    # The subprocess does not see the test transaction: it must use a slug that fails
    # validation before anything is written. It reads the test database, not the dev one.
    # Same server and socket as the tests, the test database's name in the last segment.
    parts = urlsplit(settings.DATABASE_URL)
    head = parts.path.rpartition("/")[0]
    database_url = urlunsplit(parts._replace(path=f"{head}/{connection.settings_dict['NAME']}"))
    before = Company.objects.count()

    command = [
        sys.executable, "manage.py", "create_company",
        "--name", "Web", "--slug", "www", "--owner-email", "web@example.com",
    ]  # fmt: skip

    result = subprocess.run(
        command,
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "CommandError: Cannot create the company: slug: This subdomain is reserved."
    )
    assert_not_created("www", before)
