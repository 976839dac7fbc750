"""The widget's settings endpoint (`GET /widget/config`) and the `/embed` iframe page
(docs/widget.md, "Settings" and "Embedding")."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.assistants.services import assistant_profile_get
from apps.audit.services import SYSTEM
from apps.channels.models import WidgetSettings
from apps.tenants.models import Company
from apps.tenants.services import company_suspend
from apps.widget.models import WidgetKey
from apps.widget.services import widget_key_create, widget_key_revoke
from tests.conftest import host

ORIGIN = "https://shop.example.com"
OTHER_ORIGIN = "https://blog.example.org"
SECRET = "sk-test-widget-config-secret-0123456789abcdef"


@pytest.fixture
def key_alpha(alpha: Company) -> WidgetKey:
    return widget_key_create(company=alpha, name="Shop", origins=[ORIGIN, OTHER_ORIGIN])


@pytest.fixture
def alpha_configured(alpha: Company) -> Company:
    """alpha with a bot persona, a model key of its own and saved widget settings."""
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.bot_name = "Sofía"
        profile.company_display_name = "Seguros Andes"
        profile.welcome_message = "¡Hola! ¿En qué te ayudo?"
        profile.languages = ["es", "en"]
        profile.api_key = SECRET
        profile.api_base_url = "https://models.internal.example.net/v1"
        profile.save()
        WidgetSettings.objects.update_or_create(
            pk=1,
            defaults={
                "primary_color": "#0f766e",
                "position": "left",
                "theme": "dark",
                "launcher_text": "¿Hablamos?",
                "avatar_url": "https://cdn.example.com/sofia.png",
                "prechat_name": "required",
                "prechat_email": "optional",
            },
        )
    return alpha


def get_config(client: Client, key: str | None, origin: str | None = ORIGIN, **extra: Any) -> Any:
    headers = {"Origin": origin} if origin else {}
    params = {"key": key} if key is not None else {}
    return client.get("/widget/config", params, headers=headers, **extra)


def error_code(response: Any) -> str:
    body = json.loads(response.content)
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]["code"]


# -- GET /widget/config -----------------------------------------------------------------------


def test_config_answers_the_keys_public_settings_with_cors(
    client_public: Client, key_alpha: WidgetKey, alpha_configured: Company
) -> None:
    response = get_config(client_public, key_alpha.key)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in [v.strip() for v in response["Vary"].split(",")]
    assert response["Cache-Control"] == "public, max-age=60"
    assert json.loads(response.content) == {
        "key": key_alpha.key,
        "botName": "Sofía",
        "companyName": "Seguros Andes",
        "welcomeMessage": "¡Hola! ¿En qué te ayudo?",
        "languages": ["es", "en"],
        "language": "es",
        "theme": {
            "primaryColor": "#0f766e",
            "position": "left",
            "launcherText": "¿Hablamos?",
            "avatarUrl": "https://cdn.example.com/sofia.png",
            "mode": "dark",
        },
        "prechat": {"name": "required", "email": "optional", "phone": "off"},
        "hours": {
            "enabled": False,
            "open": True,
            "offlineMessage": "",
            "timeZone": "America/Bogota",
        },
        "socketUrl": f"ws://localhost/ws/widget/?key={key_alpha.key}",
    }


def test_config_never_shows_a_secret(
    client_public: Client, key_alpha: WidgetKey, alpha_configured: Company
) -> None:
    for origin in (ORIGIN, "https://evil.example.com", None):
        response = get_config(client_public, key_alpha.key, origin)
        text = response.content.decode()
        assert SECRET not in text
        assert SECRET[-16:] not in text
        assert "models.internal.example.net" not in text
        assert "api_key" not in text.lower() and "apikey" not in text.lower()
        assert "sk-" not in text


def test_each_allowed_origin_gets_its_own_cors_answer(
    client_public: Client, key_alpha: WidgetKey
) -> None:
    for origin in (ORIGIN, OTHER_ORIGIN):
        response = get_config(client_public, key_alpha.key, origin)
        assert response.status_code == 200
        assert response["Access-Control-Allow-Origin"] == origin


def test_config_without_an_origin_is_a_same_origin_request(
    client_public: Client, key_alpha: WidgetKey
) -> None:
    response = get_config(client_public, key_alpha.key, origin=None)

    assert response.status_code == 200
    assert not response.has_header("Access-Control-Allow-Origin")
    assert json.loads(response.content)["key"] == key_alpha.key


@pytest.mark.parametrize(
    ("extra", "socket"),
    [
        ({"secure": True}, "wss://localhost/ws/widget/?key="),
        ({"HTTP_HOST": "localhost:8000"}, "ws://localhost:8000/ws/widget/?key="),
    ],
)
def test_the_socket_url_follows_the_visitors_scheme_and_port(
    client_public: Client, key_alpha: WidgetKey, extra: dict[str, Any], socket: str
) -> None:
    response = get_config(client_public, key_alpha.key, **extra)

    assert response.status_code == 200
    assert json.loads(response.content)["socketUrl"] == socket + key_alpha.key


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://shop.example.com",
        "https://shop.example.com.evil.example",
        f"http://beta.{django_settings.ROOT_DOMAIN}:8000",
    ],
)
def test_config_refuses_an_origin_the_key_does_not_allow(
    client_public: Client, key_alpha: WidgetKey, alpha_configured: Company, origin: str
) -> None:
    response = get_config(client_public, key_alpha.key, origin)

    assert response.status_code == 403
    assert error_code(response) == "origin_not_allowed"
    # The page may read why, but nothing of the settings.
    assert response["Access-Control-Allow-Origin"] == origin
    assert response["Cache-Control"] == "no-store"
    assert "Sofía" not in response.content.decode()


@pytest.mark.parametrize("key", ["pk_doesnotexist", "", "sk_live_abc", None])
def test_config_of_an_unknown_key_is_404(client_public: Client, db: None, key: str | None) -> None:
    response = get_config(client_public, key)

    assert response.status_code == 404
    assert error_code(response) == "unknown_widget_key"
    assert response["Cache-Control"] == "no-store"


def test_config_of_a_revoked_key_is_403(client_public: Client, key_alpha: WidgetKey) -> None:
    widget_key_revoke(widget_key=key_alpha, actor=SYSTEM)

    response = get_config(client_public, key_alpha.key)

    assert response.status_code == 403
    assert error_code(response) == "revoked_widget_key"


def test_config_of_a_suspended_company_is_403(
    client_public: Client, key_alpha: WidgetKey, alpha: Company
) -> None:
    company_suspend(company=alpha, actor=SYSTEM, reason="unpaid")

    response = get_config(client_public, key_alpha.key)

    assert response.status_code == 403
    assert error_code(response) == "company_suspended"


def test_config_on_the_companys_host_works_too(
    client_alpha: Client, key_alpha: WidgetKey, alpha: Company
) -> None:
    # The dashboard preview and /embed, on the company's own host: with or without Origin.
    own = f"http://{host(alpha)}"
    for origin in (own, None):
        response = get_config(client_alpha, key_alpha.key, origin)
        assert response.status_code == 200
        body = json.loads(response.content)
        assert body["key"] == key_alpha.key
        # The socket is on the public host whatever host asked.
        assert body["socketUrl"] == f"ws://localhost/ws/widget/?key={key_alpha.key}"
    assert get_config(client_alpha, key_alpha.key, ORIGIN)["Access-Control-Allow-Origin"] == ORIGIN


def test_config_reflects_business_hours(
    client_public: Client, key_alpha: WidgetKey, alpha: Company
) -> None:
    with tenant_context(alpha):
        WidgetSettings.objects.update_or_create(
            pk=1,
            defaults={
                "hours_enabled": True,
                "hours_days": [],  # no open day: closed now, whenever now is
                "hours_start": "09:00",
                "hours_end": "18:00",
                "time_zone": "Europe/Madrid",
                "offline_message": "Volvemos el lunes a las 9.",
            },
        )

    hours = json.loads(get_config(client_public, key_alpha.key).content)["hours"]

    assert hours == {
        "enabled": True,
        "open": False,
        "offlineMessage": "Volvemos el lunes a las 9.",
        "timeZone": "Europe/Madrid",
    }


def test_config_is_get_only(client_public: Client, key_alpha: WidgetKey) -> None:
    response = client_public.post(f"/widget/config?key={key_alpha.key}", headers={"Origin": ORIGIN})

    assert response.status_code == 405


# -- GET /embed -------------------------------------------------------------------------------


def embed_options(response: Any) -> dict[str, Any]:
    match = re.search(
        r'<script id="chapi-embed-options" type="application/json">(.*?)</script>',
        response.content.decode(),
    )
    assert match is not None
    return json.loads(match.group(1))


def test_embed_shows_the_chat_full_frame_for_the_keys_origins(
    client_alpha: Client, key_alpha: WidgetKey
) -> None:
    response = client_alpha.get("/embed", {"token": key_alpha.key})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert '<div id="chapi-assistant"></div>' in html
    assert (
        "<script>window.ChapiAssistant=window.ChapiAssistant||function(o)"
        "{(ChapiAssistant.q=ChapiAssistant.q||[]).push(o)}</script>"
    ) in html
    assert '<script src="/static/chapi-widget.js" async></script>' in html
    assert embed_options(response) == {"widgetKey": key_alpha.key, "mode": "inline", "open": True}
    assert response["Content-Security-Policy"] == (
        f"frame-ancestors 'self' {ORIGIN} {OTHER_ORIGIN}"
    )
    # Framing is allowed (by the CSP above), not denied by the site-wide default.
    assert response.get("X-Frame-Options") != "DENY"
    assert not response.has_header("X-Frame-Options")


def test_embed_allows_localhost_ancestors_in_development(
    client_alpha: Client, key_alpha: WidgetKey, settings: Settings
) -> None:
    settings.DEBUG = True

    response = client_alpha.get("/embed", {"token": key_alpha.key})

    assert response["Content-Security-Policy"] == (
        f"frame-ancestors 'self' {ORIGIN} {OTHER_ORIGIN} http://localhost:* http://127.0.0.1:*"
    )


def test_embed_of_a_key_of_another_company_is_404(
    client_beta: Client, key_alpha: WidgetKey
) -> None:
    response = client_beta.get("/embed", {"token": key_alpha.key})

    assert response.status_code == 404
    assert key_alpha.key not in response.content.decode()


@pytest.mark.parametrize("token", ["pk_doesnotexist", "", None])
def test_embed_of_an_unknown_token_is_404(client_alpha: Client, token: str | None) -> None:
    response = client_alpha.get("/embed", {"token": token} if token is not None else {})

    assert response.status_code == 404


def test_embed_of_a_revoked_key_is_404(client_alpha: Client, key_alpha: WidgetKey) -> None:
    widget_key_revoke(widget_key=key_alpha, actor=SYSTEM)

    response = client_alpha.get("/embed", {"token": key_alpha.key})

    assert response.status_code == 404


def test_embed_is_not_on_the_public_host(client_public: Client, key_alpha: WidgetKey) -> None:
    response = client_public.get("/embed", {"token": key_alpha.key})

    assert response.status_code == 404
