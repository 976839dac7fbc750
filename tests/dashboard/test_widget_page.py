"""The dashboard's web widget pages: keys with their allowed websites, the snippet and live
preview, revoking, and the widget's settings."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.audit.models import AuditLog
from apps.audit.services import SYSTEM
from apps.channels.models import WidgetSettings
from apps.tenants.models import Company
from apps.widget.models import WidgetKey
from apps.widget.services import widget_key_create
from tests.conftest import logged_in, member, owner

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/widget/"


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def owner_client(company: Company) -> Client:
    return english(logged_in(company, owner(company)))


def settings_form(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "save_settings": "1",
        "primary_color": "#4f46e5",
        "position": "right",
        "theme": "auto",
        "launcher_text": "",
        "avatar_url": "",
        "prechat_name": "off",
        "prechat_email": "off",
        "prechat_phone": "off",
        "hours_start": "",
        "hours_end": "",
        "time_zone": "America/Bogota",
        "offline_message": "",
        **overrides,
    }


def test_an_owner_creates_a_key_and_gets_the_snippet_and_a_live_preview(alpha: Company) -> None:
    client = owner_client(alpha)

    response = client.post(
        PAGE,
        {
            "create_key": "1",
            "name": "Tienda",
            "allowed_origins": "https://www.tienda.example\nhttps://tienda.example/",
        },
    )

    key = WidgetKey.objects.get(company=alpha)
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/widget/keys/{key.pk}/"
    assert key.name == "Tienda"
    assert key.allowed_origins == ["https://www.tienda.example", "https://tienda.example"]
    detail = client.get(response["Location"]).content.decode()
    snippet = html.unescape(detail)
    assert "window.ChapiAssistant=window.ChapiAssistant||function(o)" in snippet
    assert 'src="http://localhost/static/chapi-widget.js" async' in snippet
    assert f'widgetKey: "{key.key}"' in snippet
    # The live preview is the real chat, in the /embed page of the company's own host.
    assert f'class="widget-preview" src="http://alpha.localhost/embed?token={key.key}"' in detail
    assert f"/embed?token={key.key}" in snippet  # the iframe snippet
    with tenant_context(alpha):
        entry = AuditLog.objects.get(action="widget_key.create")
    assert entry.changes == {"allowed_origins": [None, key.allowed_origins]}


def test_origins_are_validated(alpha: Company) -> None:
    response = owner_client(alpha).post(
        PAGE, {"create_key": "1", "name": "x", "allowed_origins": "https://ok.example/path"}
    )

    assert response.status_code == 400
    assert "is not an origin like https://www.example.com" in response.content.decode()
    assert not WidgetKey.objects.filter(company=alpha).exists()


def test_allowed_websites_can_be_changed_and_are_audited(alpha: Company) -> None:
    key = widget_key_create(company=alpha, name="Web", origins=["https://a.example"])
    client = owner_client(alpha)

    response = client.post(
        f"/dashboard/widget/keys/{key.pk}/", {"allowed_origins": "https://b.example"}
    )

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.allowed_origins == ["https://b.example"]
    with tenant_context(alpha):
        entry = AuditLog.objects.get(action="widget_key.update")
    assert entry.changes == {"allowed_origins": [["https://a.example"], ["https://b.example"]]}


def test_revoking_a_key(alpha: Company) -> None:
    key = widget_key_create(company=alpha, name="Web", origins=["https://a.example"])
    client = owner_client(alpha)

    response = client.post(f"/dashboard/widget/keys/{key.pk}/revoke/")

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    page = client.get(PAGE).content.decode()
    assert "Revoked" in page
    detail = client.get(f"/dashboard/widget/keys/{key.pk}/").content.decode()
    assert "This key was revoked" in detail
    assert "/embed?token=" not in detail  # no preview of a revoked key


def test_settings_are_saved_validated_and_audited(alpha: Company) -> None:
    client = owner_client(alpha)

    bad = client.post(
        PAGE, settings_form(hours_enabled="on", hours_start="09:00", hours_end="09:00")
    )
    assert bad.status_code == 400
    assert "must differ" in bad.content.decode()

    good = client.post(
        PAGE,
        settings_form(
            primary_color="#ff0000",
            position="left",
            prechat_email="required",
            hours_enabled="on",
            hours_days=["0", "1", "2", "3", "4"],
            hours_start="09:00",
            hours_end="18:00",
            offline_message="Volvemos a las 9.",
        ),
    )

    assert good.status_code == 302
    with tenant_context(alpha):
        options = WidgetSettings.objects.get()
        assert (options.primary_color, options.position, options.prechat_email) == (
            "#ff0000",
            "left",
            "required",
        )
        assert options.hours_days == [0, 1, 2, 3, 4]
        entry = AuditLog.objects.get(action="widget_settings.update")
    assert entry.changes["primary_color"] == ["#4f46e5", "#ff0000"]


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_cannot_manage_the_widget(alpha: Company, role: str) -> None:
    key = widget_key_create(company=alpha, name="Web", origins=["https://a.example"])
    client = english(logged_in(alpha, member(alpha, role)))

    assert client.get(PAGE).status_code == 403
    assert client.get(f"/dashboard/widget/keys/{key.pk}/").status_code == 403
    assert client.post(f"/dashboard/widget/keys/{key.pk}/revoke/").status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_another_companys_key_is_invisible(alpha: Company, beta: Company) -> None:
    key = widget_key_create(company=alpha, name="Alpha web", origins=["https://a.example"])
    client = owner_client(beta)

    assert key.key not in client.get(PAGE).content.decode()
    assert client.get(f"/dashboard/widget/keys/{key.pk}/").status_code == 404
    assert client.post(f"/dashboard/widget/keys/{key.pk}/revoke/").status_code == 404
    changed = client.post(
        f"/dashboard/widget/keys/{key.pk}/", {"allowed_origins": "https://evil.example"}
    )
    assert changed.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert key.allowed_origins == ["https://a.example"]


def test_a_system_created_key_is_listed(alpha: Company) -> None:
    key = widget_key_create(company=alpha, name="CLI", origins=["https://a.example"], actor=SYSTEM)

    page = owner_client(alpha).get(PAGE).content.decode()

    assert key.key in page
    assert "https://a.example" in page
