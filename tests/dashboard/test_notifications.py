"""A member's in-dashboard notifications: the unread count in the top bar, the list, opening
one (marks it read, goes to its page), marking all read; each member sees only their own, and
nothing crosses companies."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.leads.models import Lead, Notification, Stage
from apps.leads.notify import lead_qualified_notify
from apps.tenants.models import Company
from tests.conftest import logged_in, member, owner

pytestmark = pytest.mark.django_db

NOTIFICATIONS = "/dashboard/notifications/"


def client_for(company: Company, user: User) -> Client:
    client = logged_in(company, user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def notify(company: Company, user: User, text: str, url: str = "", **fields: object) -> int:
    with tenant_context(company):
        return Notification.objects.create(user=user, kind="handoff", text=text, url=url,
                                           **fields).pk  # fmt: skip


def badge(response: object) -> str:
    page = response.content.decode()  # type: ignore[attr-defined]
    match = re.search(r'<a id="notification-badge".*?</a>', page, re.S)
    assert match, "no notification badge on the page"
    return html.unescape(match.group(0))


def listed(response: object) -> list[int]:
    page = response.content.decode()  # type: ignore[attr-defined]
    found = re.findall(r'data-testid="notification" data-notification-id="(\d+)"', page)
    return [int(pk) for pk in found]


def is_read(company: Company, pk: int) -> bool:
    with tenant_context(company):
        return Notification.objects.get(pk=pk).read_at is not None


def test_the_top_bar_counts_a_members_unread_notifications_on_every_page(alpha: Company) -> None:
    boss = owner(alpha)
    notify(alpha, boss, "A visitor is waiting for a person (Web).", "/dashboard/inbox/")
    notify(alpha, boss, "Lead Ana is qualified.", "/dashboard/leads/1/")
    read = notify(alpha, boss, "Old news", read_at=timezone.now())
    client = client_for(alpha, boss)

    for page in ("/dashboard/", "/dashboard/leads/", "/dashboard/inbox/"):
        shown = badge(client.get(page))
        assert 'data-unread="2"' in shown
        assert ">2</span>" in shown
        assert "2 unread notifications" in shown

    assert read  # the read one is not counted
    fragment = client.get(NOTIFICATIONS, {"fragment": "badge"})
    assert fragment.status_code == 200
    assert 'data-unread="2"' in badge(fragment)


def test_no_unread_notifications_show_no_count(alpha: Company) -> None:
    shown = badge(client_for(alpha, owner(alpha)).get("/dashboard/"))
    assert 'data-unread="0"' in shown
    assert "<span" not in shown


def test_the_list_shows_the_members_notifications_newest_first(alpha: Company) -> None:
    boss = owner(alpha)
    first = notify(alpha, boss, "First <b>visitor</b>", "/dashboard/inbox/")
    second = notify(alpha, boss, "Second", "/dashboard/leads/")
    with tenant_context(alpha):
        Notification.objects.filter(pk=first).update(created_at=timezone.now() - timedelta(hours=1))

    response = client_for(alpha, boss).get(NOTIFICATIONS)

    assert response.status_code == 200
    assert listed(response) == [second, first]
    page = response.content.decode()
    assert "First &lt;b&gt;visitor&lt;/b&gt;" in page  # escaped, never markup
    assert "Mark all as read" in page


def test_opening_a_notification_marks_it_read_and_goes_to_its_page(alpha: Company) -> None:
    boss = owner(alpha)
    pk = notify(alpha, boss, "Lead Ana is qualified.", "/dashboard/leads/7/")
    client = client_for(alpha, boss)

    response = client.get(f"{NOTIFICATIONS}{pk}/")

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/leads/7/"
    assert is_read(alpha, pk)
    assert 'data-unread="0"' in badge(client.get("/dashboard/"))


@pytest.mark.parametrize("url", ["https://evil.example/phish", "//evil.example/x", ""])
def test_a_notification_never_sends_the_member_to_another_site(alpha: Company, url: str) -> None:
    boss = owner(alpha)
    pk = notify(alpha, boss, "Odd", url)

    response = client_for(alpha, boss).get(f"{NOTIFICATIONS}{pk}/")

    assert response.status_code == 302
    assert response["Location"] == NOTIFICATIONS
    assert is_read(alpha, pk)


def test_mark_all_as_read_marks_only_the_members_own(alpha: Company) -> None:
    boss = owner(alpha)
    agent = member(alpha, Role.AGENT)
    mine = [notify(alpha, boss, "One"), notify(alpha, boss, "Two")]
    theirs = notify(alpha, agent, "The agent's")
    client = client_for(alpha, boss)

    response = client.post(f"{NOTIFICATIONS}read-all/")

    assert response.status_code == 302
    assert all(is_read(alpha, pk) for pk in mine)
    assert not is_read(alpha, theirs)
    assert client.get(f"{NOTIFICATIONS}read-all/").status_code == 405


def test_a_member_cannot_see_or_open_another_members_notification(alpha: Company) -> None:
    boss = owner(alpha)
    agent = member(alpha, Role.AGENT)
    theirs = notify(alpha, boss, "For the owner only", "/dashboard/leads/1/")
    client = client_for(alpha, agent)

    assert listed(client.get(NOTIFICATIONS)) == []
    assert "For the owner only" not in client.get(NOTIFICATIONS).content.decode()
    response = client.get(f"{NOTIFICATIONS}{theirs}/")
    assert response["Location"] == NOTIFICATIONS
    assert not is_read(alpha, theirs)


def test_viewers_have_notifications_too(alpha: Company) -> None:
    viewer = member(alpha, Role.VIEWER)
    pk = notify(alpha, viewer, "Hello viewer")
    client = client_for(alpha, viewer)

    assert listed(client.get(NOTIFICATIONS)) == [pk]
    assert client.post(f"{NOTIFICATIONS}read-all/").status_code == 302
    assert is_read(alpha, pk)


def test_signed_out_visitors_are_sent_to_log_in(alpha: Company) -> None:
    client = Client(HTTP_HOST=f"{alpha.slug}.localhost")
    for url in (NOTIFICATIONS, f"{NOTIFICATIONS}1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]
    assert client.post(f"{NOTIFICATIONS}read-all/").status_code == 302


def test_another_companys_notifications_are_invisible(alpha: Company, beta: Company) -> None:
    beta_pk = notify(beta, owner(beta), "Beta secret lead")
    alpha_pk = notify(alpha, owner(alpha), "Alpha news")
    client = client_for(alpha, owner(alpha))

    page = client.get(NOTIFICATIONS)
    assert "Beta secret lead" not in page.content.decode()
    assert listed(page) == [alpha_pk]
    client.get(f"{NOTIFICATIONS}{beta_pk}/")
    client.post(f"{NOTIFICATIONS}read-all/")
    assert not is_read(beta, beta_pk)
    # Alpha's session is nothing on beta's host.
    client.defaults["HTTP_HOST"] = f"{beta.slug}.localhost"
    assert client.get(NOTIFICATIONS).status_code == 302


def test_a_qualified_lead_reaches_its_team_in_the_notifications_page(alpha: Company) -> None:
    boss = owner(alpha)
    with tenant_context(alpha):
        lead = Lead.objects.create(name="Ana Pérez", stage=Stage.QUALIFIED, score=82,
                                   qualified_at=timezone.now())  # fmt: skip
        lead_qualified_notify(lead_id=lead.pk)
    client = client_for(alpha, boss)

    page = client.get(NOTIFICATIONS)
    (pk,) = listed(page)
    assert "Ana Pérez" in html.unescape(page.content.decode())
    assert 'data-unread="1"' in badge(page)
    assert client.get(f"{NOTIFICATIONS}{pk}/")["Location"] == f"/dashboard/leads/{lead.pk}/"
