"""A visitor creates a company on the public site and lands, logged in, on its own host;
then switches the language and logs out and in again there. In real headless Chromium.

Set CHAPI_SCREENSHOT_DIR to keep a screenshot of the dashboard right after signup.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import schema_exists

from apps.tenants.models import Company, Domain
from tests.browser.conftest import Server, committed
from tests.conftest import PASSWORD

# django_db only gets the test database created; see tests/browser/conftest.py.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]

COMPANY_NAME = "Óptica Ñandú"
OWNER_NAME = "Lucía Pérez"


@pytest.fixture
def new_slug(django_db_blocker: Any) -> Iterator[str]:
    """A subdomain no company has; the company signed up under it is deleted afterwards
    (it was committed by the server), schema and hosts included."""
    slug = f"browser-{uuid.uuid4().hex[:8]}"
    yield slug

    def delete() -> list[str]:
        left = []
        for company in Company.objects.filter(slug=slug):
            Domain.objects.filter(tenant=company).delete()
            company.delete(force_drop=True)
            if schema_exists(company.schema_name):
                left.append(company.schema_name)
        return left

    assert committed(django_db_blocker, delete) == []


def test_visitor_signs_up_and_uses_their_company_in_both_languages(
    server: Server, page: Any, new_slug: str, django_db_blocker: Any
) -> None:
    from playwright.sync_api import expect

    email = f"lucia@{new_slug}.example.com"
    dashboard_url = server.company_url(new_slug, "/dashboard/")
    html = page.locator("html")
    language = page.locator("#language-select")

    # The public site, in the browser's language.
    page.goto(server.public_url + "/")
    expect(html).to_have_attribute("lang", "es")
    page.locator("header a[href='/signup/']").click()
    expect(page).to_have_url(server.public_url + "/signup/")

    page.fill("#id_company_name", COMPANY_NAME)
    page.fill("#id_subdomain", new_slug)
    page.fill("#id_name", OWNER_NAME)
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type='submit']").click()

    # Handed over to the company's own host, logged in.
    expect(page).to_have_url(dashboard_url)
    expect(page.locator("header .brand")).to_have_text(COMPANY_NAME)
    expect(page.locator("main h1")).to_have_text("Hola, Lucía")
    expect(page.locator("main .lead")).to_contain_text(COMPANY_NAME)
    expect(page.locator("header details.dropdown summary")).to_have_text(OWNER_NAME)
    expect(page.locator(".messages .message.success")).to_be_visible()
    expect(page).to_have_title(re.compile(re.escape(COMPANY_NAME)))
    expect(html).to_have_attribute("lang", "es")
    expect(language).to_have_value("es")
    if directory := os.environ.get("CHAPI_SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(directory) / "chapi-dashboard.png"), full_page=True)

    def signed_up() -> tuple[str, str, str, list[str]]:
        company = Company.objects.get(slug=new_slug)
        hosts = Domain.objects.filter(tenant=company).values_list("domain", flat=True)
        return company.name, company.owner_email, company.language, list(hosts)

    assert committed(django_db_blocker, signed_up) == (
        COMPANY_NAME,
        email,
        "es",
        [f"{new_slug}.localhost"],
    )

    # The header's language switch: es -> en, and the choice sticks on this host.
    with page.expect_navigation():
        language.select_option("en")
    expect(page).to_have_url(dashboard_url)
    expect(html).to_have_attribute("lang", "en")
    expect(language).to_have_value("en")
    expect(page.locator("main h1")).to_have_text("Hello, Lucía")
    expect(page.locator("header .brand")).to_have_text(COMPANY_NAME)

    # Log out: the login page is in English too...
    page.locator("header details.dropdown summary").click()
    page.locator("header details.dropdown form button[type='submit']").click()
    expect(page).to_have_url(server.company_url(new_slug, "/accounts/login/"))
    expect(html).to_have_attribute("lang", "en")
    expect(page.locator("main h1")).to_have_text("Sign In")

    # ... and in Spanish after switching back: en -> es.
    with page.expect_navigation():
        language.select_option("es")
    expect(html).to_have_attribute("lang", "es")
    expect(language).to_have_value("es")
    expect(page.locator("main h1")).to_have_text("Iniciar sesión")

    # Log back in on the company host.
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type='submit']").click()
    expect(page).to_have_url(dashboard_url)
    expect(page.locator("header .brand")).to_have_text(COMPANY_NAME)
    expect(page.locator("header details.dropdown summary")).to_have_text(OWNER_NAME)
    expect(html).to_have_attribute("lang", "es")
    expect(page.locator("main h1")).to_have_text("Hola, Lucía")
