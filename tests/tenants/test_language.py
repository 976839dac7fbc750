"""The page language: the user's choice (cookie), else the browser's, else the company's default.

Asserted on `<html lang>` and the Content-Language header rather than on translated text, so the
tests do not depend on the compiled catalogues."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context

from apps.audit.models import AuditLog
from apps.tenants.models import Company
from tests.conftest import host

HTML_LANG = re.compile(rb"<html lang=\"([^\"]*)\">")


def page_language(response: Any) -> tuple[str, str]:
    """(the lang attribute of <html>, the Content-Language header) of an HTML page."""
    assert response.status_code == 200
    match = HTML_LANG.search(response.content)
    assert match is not None
    return match[1].decode(), response.headers["Content-Language"]


def set_default_language(company: Company, language: str) -> None:
    Company.objects.filter(pk=company.pk).update(language=language)


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("en-US,en;q=0.9", "en"),
        ("en", "en"),
        ("es", "es"),
        ("es-MX,es;q=0.9,en;q=0.8", "es"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "en"),
        ("EN-gb", "en"),
    ],
)
def test_the_browser_language_is_used(alpha: Company, accept_language: str, expected: str) -> None:
    client = Client(HTTP_HOST=host(alpha), HTTP_ACCEPT_LANGUAGE=accept_language)

    response = client.get("/accounts/login/")

    assert page_language(response) == (expected, expected)
    assert "Accept-Language" in response.headers["Vary"]


def test_the_browser_language_beats_the_company_default(alpha: Company) -> None:
    set_default_language(alpha, "en")
    client = Client(HTTP_HOST=host(alpha), HTTP_ACCEPT_LANGUAGE="es")

    assert page_language(client.get("/accounts/login/")) == ("es", "es")


@pytest.mark.parametrize("accept_language", [None, "fr-FR,fr;q=0.9", "*"])
def test_without_a_supported_browser_language_the_company_default_applies(
    alpha: Company, accept_language: str | None
) -> None:
    headers = {} if accept_language is None else {"Accept-Language": accept_language}
    client = Client(HTTP_HOST=host(alpha), headers=headers)
    assert page_language(client.get("/accounts/login/")) == ("es", "es")

    set_default_language(alpha, "en")

    assert page_language(client.get("/accounts/login/")) == ("en", "en")


def test_each_company_has_its_own_default(alpha: Company, beta: Company) -> None:
    set_default_language(alpha, "en")

    assert page_language(Client(HTTP_HOST=host(alpha)).get("/accounts/login/")) == ("en", "en")
    assert page_language(Client(HTTP_HOST=host(beta)).get("/accounts/login/")) == ("es", "es")


def test_owner_changes_the_default_language_in_the_company_admin(
    alpha: Company, owner_client_alpha: Client
) -> None:
    response = owner_client_alpha.post(
        f"/admin/tenants/companysettings/{alpha.pk}/change/", {"name": "Alpha", "language": "en"}
    )

    assert response.status_code == 302
    alpha.refresh_from_db()
    assert alpha.language == "en"
    with tenant_context(alpha):
        entry = AuditLog.objects.get(action="company.update")
        assert entry.changes == {"language": ["es", "en"]}
    assert page_language(Client(HTTP_HOST=host(alpha)).get("/accounts/login/")) == ("en", "en")


def test_the_public_site_defaults_to_spanish(client_public: Client) -> None:
    assert page_language(client_public.get("/")) == ("es", "es")
    english = Client(HTTP_HOST=settings.ROOT_DOMAIN, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert page_language(english.get("/")) == ("en", "en")


@pytest.mark.parametrize("on_public_host", [False, True], ids=["company-host", "public-host"])
def test_choosing_a_language_sets_the_cookie_and_wins_over_the_browser(
    alpha: Company, on_public_host: bool
) -> None:
    hostname = settings.ROOT_DOMAIN if on_public_host else host(alpha)
    path = "/" if on_public_host else "/accounts/login/"
    client = Client(HTTP_HOST=hostname, HTTP_ACCEPT_LANGUAGE="es")
    assert page_language(client.get(path)) == ("es", "es")

    response = client.post("/i18n/setlang/", {"language": "en", "next": path})

    assert response.status_code == 302
    assert response["Location"] == path
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.key == "chapi_language"
    assert cookie.value == "en"
    assert page_language(client.get(path)) == ("en", "en")


def test_an_unsupported_language_cookie_is_ignored(alpha: Company) -> None:
    client = Client(HTTP_HOST=host(alpha), HTTP_ACCEPT_LANGUAGE="en")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"

    assert page_language(client.get("/accounts/login/")) == ("en", "en")


def test_a_signed_in_page_follows_the_language_cookie(
    alpha: Company, owner_client_alpha: Client
) -> None:
    owner_client_alpha.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    assert page_language(owner_client_alpha.get("/dashboard/")) == ("en", "en")
