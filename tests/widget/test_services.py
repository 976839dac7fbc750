"""The widget's settings (business hours), its public configuration and snippet, origins, and
the `create_widget_key` command."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.assistants.services import assistant_profile_get
from apps.audit.models import AuditLog
from apps.audit.services import SYSTEM
from apps.channels.models import WidgetSettings
from apps.tenants.models import Company
from apps.widget.models import WidgetKey
from apps.widget.services import (
    origin_allowed,
    widget_config,
    widget_key_create,
    widget_key_resolve,
    widget_key_revoke,
    widget_snippet,
)

BOGOTA = ZoneInfo("America/Bogota")
TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAYS = [0, 1, 2, 3, 4]
# 2026-11-23 is a Monday; the 27th a Friday, the 28th a Saturday.
MONDAY, FRIDAY, SATURDAY, SUNDAY = 23, 27, 28, 29


def at(day: int, hour: int, minute: int = 0, tz: ZoneInfo = BOGOTA) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=tz)


def hours(**fields: Any) -> WidgetSettings:
    """Unsaved settings with business hours (Monday to Friday, 9 to 17, Bogotá)."""
    values: dict[str, Any] = {
        "hours_enabled": True,
        "hours_days": WEEKDAYS,
        "hours_start": time(9),
        "hours_end": time(17),
        "time_zone": "America/Bogota",
        **fields,
    }
    return WidgetSettings(**values)


# -- business hours ---------------------------------------------------------------------------


def test_without_business_hours_it_is_always_open() -> None:
    assert WidgetSettings().is_open(at(SUNDAY, 3))
    assert WidgetSettings().is_open()
    # Enabled without times (the form refuses it): treated as off.
    assert hours(hours_start=None).is_open(at(SUNDAY, 3))
    assert hours(hours_end=None).is_open(at(SUNDAY, 3))


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (at(MONDAY, 9), True),  # opening time included
        (at(MONDAY, 12, 30), True),
        (at(FRIDAY, 16, 59), True),
        (at(MONDAY, 8, 59), False),
        (at(MONDAY, 17), False),  # closing time excluded
        (at(FRIDAY, 23), False),
        (at(SATURDAY, 12), False),  # a closed day
        (at(SUNDAY, 10), False),
    ],
)
def test_normal_business_hours(moment: datetime, open_: bool) -> None:
    assert hours().is_open(moment) is open_


def test_only_the_chosen_days_are_open() -> None:
    settings = hours(hours_days=[5, 6])  # weekends only

    assert settings.is_open(at(SATURDAY, 10))
    assert settings.is_open(at(SUNDAY, 10))
    assert not settings.is_open(at(MONDAY, 10))
    assert not hours(hours_days=[]).is_open(at(MONDAY, 10))


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        # Friday 22:00 until Saturday 06:00 (Friday is the only open day).
        (at(FRIDAY, 22), True),
        (at(FRIDAY, 23, 59), True),
        (at(SATURDAY, 0), True),
        (at(SATURDAY, 5, 59), True),
        (at(SATURDAY, 6), False),
        (at(FRIDAY, 21, 59), False),
        (at(FRIDAY, 3), False),  # Thursday night is not open
        (at(SATURDAY, 22), False),  # Saturday is not an open day
        (at(SATURDAY, 12), False),
    ],
)
def test_overnight_hours_span_midnight(moment: datetime, open_: bool) -> None:
    settings = hours(hours_days=[4], hours_start=time(22), hours_end=time(6))

    assert settings.is_open(moment) is open_


def test_overnight_hours_from_sunday_open_into_monday() -> None:
    settings = hours(hours_days=[6], hours_start=time(20), hours_end=time(2))

    assert settings.is_open(at(SUNDAY, 21))
    assert settings.is_open(datetime(2026, 11, 30, 1, tzinfo=BOGOTA))  # Monday 01:00
    assert settings.is_open(at(MONDAY, 1))  # after Sunday the 22nd, open too
    assert not settings.is_open(at(MONDAY, 2))
    assert not settings.is_open(datetime(2026, 11, 24, 1, tzinfo=BOGOTA))  # after Monday


def test_hours_are_read_in_the_companys_time_zone() -> None:
    bogota = hours()  # UTC-5
    # 14:00 UTC on Monday is 09:00 in Bogotá; 13:59 UTC is 08:59.
    assert bogota.is_open(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    assert not bogota.is_open(datetime(2026, 11, 23, 13, 59, tzinfo=UTC))
    # Friday 21:30 UTC is 16:30 in Bogotá: still open, though past 17:00 in UTC terms.
    assert bogota.is_open(datetime(2026, 11, 27, 21, 30, tzinfo=UTC))

    tokyo = hours(time_zone="Asia/Tokyo")  # UTC+9: the day changes too
    # Monday 00:30 UTC is Monday 09:30 in Tokyo: open.
    assert tokyo.is_open(datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    # Friday 10:00 UTC is Friday 19:00 in Tokyo: closed.
    assert not tokyo.is_open(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    # Sunday 01:00 UTC is Sunday 10:00 in Tokyo: closed, a weekend day there.
    assert not tokyo.is_open(datetime(2026, 11, 29, 1, 0, tzinfo=UTC))
    # Whatever zone the moment is given in.
    assert tokyo.is_open(at(MONDAY, 10, tz=TOKYO))
    assert tokyo.is_open(datetime(2026, 11, 22, 19, 30, tzinfo=BOGOTA))  # Mon 09:30 Tokyo


def test_an_unknown_time_zone_is_refused_by_validation() -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        hours(time_zone="Mars/Olympus_Mons").full_clean()
    with pytest.raises(ValidationError):
        WidgetSettings(hours_enabled=True).full_clean()  # no opening nor closing time
    with pytest.raises(ValidationError):
        hours(hours_days=[7]).full_clean()
    with pytest.raises(ValidationError, match=r"must differ|deben ser distintas"):
        hours(hours_start=time(9), hours_end=time(9)).full_clean()  # would never be open


# -- the public configuration -----------------------------------------------------------------


@pytest.fixture
def key_alpha(alpha: Company) -> WidgetKey:
    return widget_key_create(company=alpha, name="Shop", origins=["https://shop.example.com"])


def profile_update(company: Company, **fields: Any) -> None:
    with tenant_context(company):
        profile = assistant_profile_get()
        for name, value in fields.items():
            setattr(profile, name, value)
        profile.save()


def settings_update(company: Company, **fields: Any) -> None:
    with tenant_context(company):
        WidgetSettings.objects.update_or_create(pk=1, defaults=fields)


def test_config_defaults_of_a_company_that_saved_no_settings(
    key_alpha: WidgetKey, alpha: Company
) -> None:
    profile_update(alpha, company_display_name="", bot_name="CHAPI", languages=["es", "en"])

    config = widget_config(key_alpha, "wss://example/ws")

    assert config["companyName"] == alpha.name  # no display name: the company's name
    assert config["botName"] == "CHAPI"
    assert config["theme"] == {
        "primaryColor": "#4f46e5",
        "position": "right",
        "launcherText": "",
        "avatarUrl": "",
        "mode": "auto",
    }
    assert config["prechat"] == {"name": "off", "email": "off", "phone": "off"}
    assert config["hours"] == {
        "enabled": False,
        "open": True,
        "offlineMessage": "",
        "timeZone": "America/Bogota",
    }
    assert config["socketUrl"] == "wss://example/ws"
    with tenant_context(alpha):
        assert WidgetSettings.objects.filter(pk=1).exists()  # created on first use


def test_config_when_closed_shows_the_offline_message(key_alpha: WidgetKey, alpha: Company) -> None:
    closed = {"hours_enabled": True, "hours_days": [], "hours_start": time(9)}
    settings_update(alpha, **closed, hours_end=time(17), offline_message="Volvemos a las 9.")

    hours_ = widget_config(key_alpha, "ws://x")["hours"]

    assert hours_ == {
        "enabled": True,
        "open": False,
        "offlineMessage": "Volvemos a las 9.",
        "timeZone": "America/Bogota",
    }


@pytest.mark.parametrize(
    ("languages", "expected"),
    [
        (["en", "es"], "We're outside business hours."),
        (["es", "en"], "Estamos fuera del horario de atención."),
    ],
)
def test_config_when_closed_without_a_message_says_it_in_the_bots_language(
    key_alpha: WidgetKey, alpha: Company, languages: list[str], expected: str
) -> None:
    profile_update(alpha, languages=languages)
    settings_update(
        alpha, hours_enabled=True, hours_days=[], hours_start=time(9), hours_end=time(17)
    )

    config = widget_config(key_alpha, "ws://x")

    assert config["language"] == languages[0]
    assert config["languages"] == languages
    offline = config["hours"]["offlineMessage"]
    assert offline
    if languages[0] == "en":
        assert offline.startswith(expected)
    else:
        # Translated (whatever the exact wording), not the English source.
        assert not offline.startswith("We're outside")


def test_config_when_open_has_no_offline_message(key_alpha: WidgetKey, alpha: Company) -> None:
    every_day = {"hours_days": [0, 1, 2, 3, 4, 5, 6], "offline_message": "Cerrado."}
    settings_update(
        alpha, hours_enabled=True, hours_start=time(0), hours_end=time(23, 59, 59, 999999)
    )
    settings_update(alpha, **every_day)

    hours_ = widget_config(key_alpha, "ws://x")["hours"]

    assert hours_["open"] is True and hours_["offlineMessage"] == ""


# -- the snippet ------------------------------------------------------------------------------

QUEUE = (
    "<script>window.ChapiAssistant=window.ChapiAssistant||function(o)"
    "{(ChapiAssistant.q=ChapiAssistant.q||[]).push(o)}</script>"
)


def snippet_options(snippet: str) -> dict[str, Any]:
    match = re.search(r"<script>new ChapiAssistant\(\{ (.*) \}\);</script>$", snippet)
    assert match is not None, snippet
    body = match.group(1)
    for name in ("widgetKey", "botName", "companyName", "welcomeMessage"):
        body = body.replace(f"{name}: ", f'"{name}": ', 1)
    return json.loads("{" + body + "}")


def test_the_snippet_has_the_queue_the_script_and_the_key(key_alpha: WidgetKey) -> None:
    config = {"botName": "Sofía", "companyName": "Seguros Andes", "welcomeMessage": "¡Hola!"}

    snippet = widget_snippet(
        script_url="https://chapi.example.com/static/chapi-widget.js",
        widget_key=key_alpha,
        config=config,
    )

    lines = snippet.split("\n")
    assert lines[0] == '<div id="chapi-assistant"></div>'
    assert lines[1] == QUEUE  # before the script: `new ChapiAssistant` may run first
    assert (
        lines[2] == '<script src="https://chapi.example.com/static/chapi-widget.js" async></script>'
    )
    assert snippet_options(snippet) == {"widgetKey": key_alpha.key, **config}
    assert "Sofía" in snippet  # readable, not \u-escaped


@pytest.mark.parametrize(
    "bot_name",
    [
        "Bot</script><script>alert(1)</script>",
        "Bot</SCRIPT >",
        "<!--<script>",  # would keep the real </script> from ending the element
        "Ana & <b>Co</b>",
    ],
)
def test_the_snippet_cannot_be_broken_out_of_by_a_name(key_alpha: WidgetKey, bot_name: str) -> None:
    config = {"botName": bot_name, "companyName": "A</script>", "welcomeMessage": "<!-- hi"}

    snippet = widget_snippet(
        script_url="https://chapi.example.com/static/chapi-widget.js",
        widget_key=key_alpha,
        config=config,
    )

    last = snippet.split("\n")[-1]
    inner = last.removeprefix("<script>").removesuffix("</script>")
    # Nothing the HTML parser reads inside a script element: no end tag, no "<!--" (which
    # with a "<script" after it would keep the real end tag from ending the element).
    assert "</script" not in inner.lower()
    assert "<!--" not in inner
    assert snippet.lower().count("<script") == 3
    assert snippet.lower().count("</script") == 3
    assert snippet_options(snippet)["botName"] == bot_name  # the same text once parsed


# -- keys and origins -------------------------------------------------------------------------


def test_origins_the_key_allows_and_the_companys_own_hosts(
    key_alpha: WidgetKey, settings: Settings
) -> None:
    settings.DEBUG = False
    allowed = [
        "https://shop.example.com",
        "https://SHOP.example.com",  # browsers send lowercase; case never matters
        "https://shop.example.com/",
        "http://alpha.localhost:8000",
        "https://alpha.localhost",
    ]
    refused = [
        None,
        "",
        "null",
        "https://evil.example.com",
        "http://shop.example.com",
        "https://shop.example.com:444",
        "http://beta.localhost:8000",
        "http://localhost:8000",
        "ftp://alpha.localhost",
        "alpha.localhost",
    ]
    for origin in allowed:
        assert origin_allowed(key_alpha, origin), origin
    for refused_origin in refused:
        assert not origin_allowed(key_alpha, refused_origin), refused_origin
    settings.DEBUG = True
    assert origin_allowed(key_alpha, "http://localhost:5173")
    assert origin_allowed(key_alpha, "http://127.0.0.1:8080")
    assert not origin_allowed(key_alpha, "http://evil.example.com")


def test_keys_resolve_until_revoked(key_alpha: WidgetKey, alpha: Company) -> None:
    assert key_alpha.key.startswith("pk_") and len(key_alpha.key) <= 40
    resolved = widget_key_resolve(key_alpha.key)
    assert resolved.widget_key == key_alpha and resolved.error == ""
    assert widget_key_resolve("pk_nope").error == "unknown_widget_key"
    assert widget_key_resolve(key_alpha.key[3:]).error == "unknown_widget_key"

    widget_key_revoke(widget_key=key_alpha, actor=SYSTEM)
    widget_key_revoke(widget_key=key_alpha, actor=SYSTEM)  # twice: no error, one record

    assert widget_key_resolve(key_alpha.key).error == "revoked_widget_key"
    key_alpha.refresh_from_db()
    assert not key_alpha.is_active
    with tenant_context(alpha):
        assert AuditLog.objects.filter(action="widget_key.revoke").count() == 1


# -- create_widget_key ------------------------------------------------------------------------


def create_widget_key(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("create_widget_key", *args, stdout=out)
    text = out.getvalue()
    assert text.count("\n") <= 1  # one JSON object, one line
    return json.loads(text)


def test_create_widget_key_prints_the_key_and_its_snippet(alpha: Company) -> None:
    printed = create_widget_key(
        "--company",
        "alpha",
        "--origin",
        "https://Shop.Example.com/",
        "--origin",
        "https://blog.example.org",
        "--name",
        "Tienda",
    )

    assert set(printed) == {"id", "company", "name", "key", "allowed_origins", "snippet"}
    widget_key = WidgetKey.objects.get(pk=printed["id"])
    assert widget_key.company_id == alpha.pk
    assert (printed["company"], printed["name"]) == ("alpha", "Tienda")
    assert printed["key"] == widget_key.key and printed["key"].startswith("pk_")
    assert printed["allowed_origins"] == ["https://shop.example.com", "https://blog.example.org"]
    assert widget_key.allowed_origins == printed["allowed_origins"]
    snippet = printed["snippet"]
    assert QUEUE in snippet
    assert '<script src="https://localhost/static/chapi-widget.js" async></script>' in snippet
    assert snippet_options(snippet)["widgetKey"] == widget_key.key
    with tenant_context(alpha):
        [record] = AuditLog.objects.filter(action="widget_key.create")
        assert record.actor_kind == "system"


def test_create_widget_key_with_a_base_url(alpha: Company) -> None:
    printed = create_widget_key(
        "--company",
        "alpha",
        "--origin",
        "https://shop.example.com",
        "--base-url",
        "https://chat.example.com/",
    )

    assert (
        '<script src="https://chat.example.com/static/chapi-widget.js" async></script>'
        in printed["snippet"]
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--company", "alpha"], id="no-origin"),
        pytest.param(["--company", "alpha", "--origin", "   "], id="blank-origin"),
        pytest.param(["--company", "alpha", "--origin", "shop.example.com"], id="no-scheme"),
        pytest.param(
            ["--company", "alpha", "--origin", "https://shop.example.com/path"], id="with-path"
        ),
        pytest.param(["--company", "nope", "--origin", "https://shop.example.com"], id="unknown"),
        pytest.param(["--company", "public", "--origin", "https://a.example.com"], id="public"),
    ],
)
def test_create_widget_key_refuses_bad_arguments(alpha: Company, args: list[str]) -> None:
    with pytest.raises(CommandError):
        create_widget_key(*args)

    assert not WidgetKey.objects.exists()
