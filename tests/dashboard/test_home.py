"""The dashboard home: the token budget notice, the assistant/API card and the navigation."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.accounts.models import Role, User
from apps.assistants.models import Provider
from apps.assistants.services import assistant_profile_get
from apps.conversations.models import UsageMonth
from apps.tenants.models import Company
from tests.conftest import logged_in, member, owner

HOME = "/dashboard/"


@pytest.fixture(autouse=True)
def _no_platform_model_key(settings: Settings) -> None:
    settings.OPENAI_API_KEY = ""


def client_for(company: Company, user: User) -> Client:
    client = logged_in(company, user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def this_month() -> date:
    return timezone.now().date().replace(day=1)


def set_budget(company: Company, budget: int, *, used: int, month: date | None = None) -> None:
    with tenant_context(company):
        profile = assistant_profile_get()
        profile.monthly_token_budget = budget
        profile.save()
        UsageMonth.objects.create(
            month=month or this_month(), input_tokens=used - used // 4, output_tokens=used // 4
        )


NOTICE = re.compile(r'<div class="notice (\w+)" role="status" id="budget-notice">(.*?)</div>', re.S)


def notice(html: str) -> str | None:
    found = NOTICE.search(html)
    if found is None:
        return None
    text = re.sub(r"<[^>]+>", "", found.group(2))
    return f"{found.group(1)}: " + " ".join(text.split())


def test_the_notice_appears_at_80_percent_of_the_budget(alpha: Company) -> None:
    set_budget(alpha, 10_000, used=8_000)

    response = client_for(alpha, owner(alpha)).get(HOME)

    assert response.status_code == 200
    assert notice(response.content.decode()) == (
        "warning: 80% of the monthly token budget is used. 8,000 of 10,000 tokens used this "
        "month. When it runs out, the assistant answers with the offline responder. "
        "Change the budget"
    )


def test_there_is_no_notice_under_80_percent(alpha: Company) -> None:
    set_budget(alpha, 10_000, used=7_999)

    response = client_for(alpha, owner(alpha)).get(HOME)

    assert response.context["budget"] is None
    assert notice(response.content.decode()) is None


@pytest.mark.parametrize(("used", "shown"), [(10_000, "10,000"), (12_345, "12,345")])
def test_the_notice_says_when_the_budget_is_used_up(alpha: Company, used: int, shown: str) -> None:
    set_budget(alpha, 10_000, used=used)

    response = client_for(alpha, member(alpha, Role.VIEWER)).get(HOME)

    assert notice(response.content.decode()) == (
        f"danger: The monthly token budget is used up. {shown} of 10,000 tokens used this month. "
        "The assistant answers with the offline responder until next month or until the budget "
        "is raised."
    )


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AGENT, Role.VIEWER])
def test_every_member_sees_the_notice(alpha: Company, role: str) -> None:
    set_budget(alpha, 1_000, used=900)

    response = client_for(alpha, member(alpha, role)).get(HOME)

    text = notice(response.content.decode())
    assert text is not None
    assert text.startswith("warning: 90% of the monthly token budget is used. 900 of 1,000 tokens")
    assert text.endswith("Change the budget") == (role == Role.ADMIN)


def test_no_budget_means_no_notice(alpha: Company) -> None:
    set_budget(alpha, 0, used=5_000_000)

    response = client_for(alpha, owner(alpha)).get(HOME)

    assert notice(response.content.decode()) is None


def test_only_this_months_usage_counts(alpha: Company) -> None:
    last_month = (this_month() - timedelta(days=1)).replace(day=1)
    set_budget(alpha, 1_000, used=5_000, month=last_month)

    response = client_for(alpha, owner(alpha)).get(HOME)

    assert notice(response.content.decode()) is None


def test_another_companys_usage_does_not_count(alpha: Company, beta: Company) -> None:
    set_budget(beta, 1_000, used=1_000)
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.monthly_token_budget = 1_000
        profile.save()

    alpha_home = client_for(alpha, owner(alpha)).get(HOME)
    beta_home = client_for(beta, owner(beta)).get(HOME)

    assert notice(alpha_home.content.decode()) is None
    assert notice(beta_home.content.decode()).startswith("danger: ")  # type: ignore[union-attr]


def links(html: str) -> list[str]:
    card = html.split("<h2>Assistant and API</h2>", 1)[1].split("</section>", 1)[0]
    return re.findall(r'<a href="([^"]+)">([^<]+)</a>', card)


def nav(html: str) -> list[tuple[str, str]]:
    bar = html.split('<nav class="mainnav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', bar)


@pytest.mark.parametrize(
    ("role", "expected_links", "expected_nav"),
    [
        (
            Role.OWNER,
            [
                ("/dashboard/assistant/test/", "Test your assistant"),
                ("/dashboard/widget/", "Put the chat on your website"),
                ("/dashboard/api-keys/", "API keys"),
                ("/dashboard/api-token/", "Personal API token"),
            ],
            [
                "Home",
                "Team",
                "Leads",
                "Inbox",
                "Analytics",
                "Flows",
                "A/B tests",
                "Assistant",
                "Web widget",
                "Channels",
                "Lead settings",
                "API",
                "Settings",
            ],
        ),
        (
            Role.ADMIN,
            [
                ("/dashboard/assistant/test/", "Test your assistant"),
                ("/dashboard/widget/", "Put the chat on your website"),
                ("/dashboard/api-keys/", "API keys"),
                ("/dashboard/api-token/", "Personal API token"),
            ],
            [
                "Home",
                "Team",
                "Leads",
                "Inbox",
                "Analytics",
                "Flows",
                "A/B tests",
                "Assistant",
                "Web widget",
                "Channels",
                "Lead settings",
                "API",
                "Settings",
            ],
        ),
        (
            Role.AGENT,
            [
                ("/dashboard/assistant/test/", "Test your assistant"),
                ("/dashboard/api-token/", "Personal API token"),
            ],
            ["Home", "Team", "Leads", "Inbox", "Analytics", "Flows", "A/B tests", "Assistant"],
        ),
        (
            Role.VIEWER,
            [("/dashboard/api-token/", "Personal API token")],
            ["Home", "Team", "Leads", "Inbox", "Analytics", "Flows", "A/B tests"],
        ),
    ],
)
def test_links_and_navigation_follow_the_role(
    alpha: Company,
    role: str,
    expected_links: list[tuple[str, str]],
    expected_nav: list[str],
) -> None:
    response = client_for(alpha, member(alpha, role)).get(HOME)

    html = response.content.decode()
    assert links(html) == expected_links
    assert [label for _url, label in nav(html)] == expected_nav
    if "Assistant" in expected_nav:
        assert ("/dashboard/assistant/test/", "Assistant") in nav(html)
    if "API" in expected_nav:
        assert ("/dashboard/api-keys/", "API") in nav(html)


def test_the_card_names_the_offline_responder_without_a_key(alpha: Company) -> None:
    response = client_for(alpha, owner(alpha)).get(HOME)

    assert "Model in use: Offline responder (no API key configured)" in response.content.decode()


def test_the_card_names_the_model_with_a_key(alpha: Company, settings: Settings) -> None:
    settings.OPENAI_API_KEY = "sk-test-platform"
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.model = "gpt-4.1-mini"
        profile.save()

    response = client_for(alpha, owner(alpha)).get(HOME)

    html = response.content.decode()
    assert "Model in use: OpenAI-compatible: gpt-4.1-mini" in html
    assert "sk-test-platform" not in html


def test_the_card_names_an_offline_responder_chosen_in_the_settings(
    alpha: Company, settings: Settings
) -> None:
    settings.OPENAI_API_KEY = "sk-test-platform"
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.provider = Provider.OFFLINE
        profile.save()

    response = client_for(alpha, owner(alpha)).get(HOME)

    assert (
        "Model in use: Offline responder (chosen in the assistant settings)"
        in response.content.decode()
    )
