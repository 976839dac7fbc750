"""Connecting and disconnecting channels (services and the `connect_channel` command): the
credentials are checked with the provider, Telegram's webhook is registered with a secret,
nothing is saved when the provider refuses, and disconnecting removes the route."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from apps.audit.models import AuditLog
from apps.audit.services import SYSTEM
from apps.channels.adapters import SetupError
from apps.channels.models import ChannelConnection
from apps.channels.services import channel_disconnect, webhook_url
from apps.conversations.models import Message
from apps.tenants.models import Company
from apps.webhooks.models import WebhookRoute
from tests.channels.conftest import (
    META_PHONE_ID,
    META_SECRET,
    META_TOKEN,
    TELEGRAM_TOKEN,
    TWILIO_SENDER,
    TWILIO_SID,
    TWILIO_TOKEN,
    connect,
    connect_meta,
    connect_telegram,
    connect_twilio,
    fixture,
    post_telegram,
)
from tests.fakes.meta_server import DEFAULT_DISPLAY_PHONE_NUMBER, FakeMeta
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.twilio_server import FakeTwilio


def channels_of(company: Company) -> list[ChannelConnection]:
    with tenant_context(company):
        return list(ChannelConnection.objects.all())


def route_of(webhook_id: str) -> WebhookRoute | None:
    with schema_context("public"):
        return WebhookRoute.objects.filter(webhook_id=webhook_id).first()


# -- Telegram -------------------------------------------------------------------------------


def test_connecting_a_bot_checks_the_token_and_sets_the_webhook_with_a_secret(
    company: Company, tg: FakeTelegram
) -> None:
    channel = connect_telegram(company)

    assert [r.api_method for r in tg.requests] == ["getMe", "setWebhook"]
    webhook = tg.webhook(TELEGRAM_TOKEN)
    assert webhook is not None
    assert webhook["url"] == f"http://localhost/hooks/telegram/{channel.webhook_id}"
    assert webhook["url"] == webhook_url(channel)
    assert webhook["secret_token"] == channel.secret_token
    assert len(channel.secret_token) >= 32
    assert webhook["allowed_updates"] == ["message", "edited_message", "callback_query"]
    assert channel.bot_username == "chapi_test_bot"
    assert channel.status == ChannelConnection.Status.ACTIVE
    route = route_of(channel.webhook_id)
    assert route is not None and (route.company_id, route.kind) == (company.pk, "telegram")
    with tenant_context(company):
        assert AuditLog.objects.filter(action="channel.connect").count() == 1


def test_credentials_are_encrypted_at_rest(
    company: Company, tg: FakeTelegram, tw: FakeTwilio, wa: FakeMeta
) -> None:
    telegram = connect_telegram(company)
    twilio = connect_twilio(company)
    meta = connect_meta(company)
    with tenant_context(company), connection.cursor() as cursor:
        cursor.execute(
            "SELECT bot_token, secret_token, auth_token, access_token, app_secret, verify_token"
            " FROM chapi_channels_channelconnection"
        )
        raw = " ".join(str(value) for row in cursor.fetchall() for value in row)
    for secret in (
        TELEGRAM_TOKEN,
        telegram.secret_token,
        TWILIO_TOKEN,
        META_TOKEN,
        META_SECRET,
        meta.verify_token,
    ):
        assert secret not in raw
    assert twilio.auth_token == TWILIO_TOKEN  # and read back decrypted


def test_two_bots_of_one_company_get_their_own_webhooks(company: Company, tg: FakeTelegram) -> None:
    other_token = "7000000003:AAOtherOtherOtherOtherOtherOtherOther1"
    tg.add_bot(other_token, "otra_tienda_bot")

    first = connect_telegram(company)
    second = connect_telegram(company, other_token)

    assert first.webhook_id != second.webhook_id
    assert first.secret_token != second.secret_token
    assert tg.webhook(other_token)["url"].endswith(second.webhook_id)  # type: ignore[index]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("123456789:AAnotAbotThatTelegramKnows_0123456789", "Telegram refused the bot token"),
        ("not-a-token", "Telegram refused the bot token"),
    ],
)
def test_a_bad_token_raises_setup_error_and_nothing_is_saved(
    company: Company, tg: FakeTelegram, token: str, message: str
) -> None:
    with pytest.raises(SetupError, match=message):
        connect_telegram(company, token)

    assert channels_of(company) == []
    with schema_context("public"):
        assert not WebhookRoute.objects.filter(company=company).exists()
    assert not any(r.api_method == "setWebhook" for r in tg.requests)


def test_a_refused_webhook_raises_setup_error_and_nothing_is_saved(
    company: Company, tg: FakeTelegram
) -> None:
    tg.require_https_webhook = True  # the webhook is http://localhost/...: Telegram says no

    with pytest.raises(SetupError, match="An HTTPS URL must be provided"):
        connect_telegram(company)

    assert channels_of(company) == []
    with schema_context("public"):
        assert not WebhookRoute.objects.filter(company=company).exists()


def test_disconnecting_deletes_the_webhook_and_the_route_and_keeps_the_history(
    company: Company, tg: FakeTelegram, client_public: Client
) -> None:
    channel = connect_telegram(company)
    post_telegram(client_public, channel, fixture("telegram_text.json"))

    with tenant_context(company):
        channel_disconnect(channel=ChannelConnection.objects.get(pk=channel.pk), actor=SYSTEM)

        kept = ChannelConnection.objects.get(pk=channel.pk)
        assert kept.status == ChannelConnection.Status.DISCONNECTED
        assert kept.disconnected_at is not None
        assert Message.objects.count() == 2
        assert AuditLog.objects.filter(action="channel.disconnect").count() == 1
    assert tg.requests[-1].api_method == "deleteWebhook"
    assert tg.webhook(TELEGRAM_TOKEN) is None
    assert route_of(channel.webhook_id) is None
    later = fixture("telegram_text.json") | {"update_id": 734091300}
    assert post_telegram(client_public, channel, later).status_code == 404


def test_disconnecting_works_even_when_telegram_cannot_remove_the_webhook(
    company: Company, tg: FakeTelegram, client_public: Client
) -> None:
    channel = connect_telegram(company)
    tg.queue_fault("500", method="deleteWebhook")

    with tenant_context(company):
        channel_disconnect(channel=ChannelConnection.objects.get(pk=channel.pk), actor=SYSTEM)
        assert ChannelConnection.objects.get(pk=channel.pk).is_active is False
    assert route_of(channel.webhook_id) is None
    assert post_telegram(client_public, channel, fixture("telegram_text.json")).status_code == 404


def test_disconnecting_twice_changes_nothing(company: Company, tg: FakeTelegram) -> None:
    channel = connect_telegram(company)
    with tenant_context(company):
        channel_disconnect(channel=ChannelConnection.objects.get(pk=channel.pk), actor=SYSTEM)
        calls = len(tg.requests)
        channel_disconnect(channel=ChannelConnection.objects.get(pk=channel.pk), actor=SYSTEM)
        assert AuditLog.objects.filter(action="channel.disconnect").count() == 1
    assert len(tg.requests) == calls


# -- WhatsApp -----------------------------------------------------------------------------------


def test_connecting_twilio_checks_the_account(company: Company, tw: FakeTwilio) -> None:
    channel = connect_twilio(company)

    request = tw.requests[-1]
    assert (request.method, request.path) == ("GET", f"/2010-04-01/Accounts/{TWILIO_SID}.json")
    assert request.auth == (TWILIO_SID, TWILIO_TOKEN)
    assert (channel.account_sid, channel.sender) == (TWILIO_SID, TWILIO_SENDER)
    assert route_of(channel.webhook_id).kind == "whatsapp_twilio"  # type: ignore[union-attr]


def test_twilio_credentials_it_refuses_save_nothing(company: Company, tw: FakeTwilio) -> None:
    with pytest.raises(SetupError, match="Twilio refused the account SID and auth token"):
        connect_twilio(company, auth_token="f" * 32)

    assert channels_of(company) == []


def test_connecting_meta_reads_the_phone_number_and_makes_up_a_verify_token(
    company: Company, wa: FakeMeta
) -> None:
    channel = connect(
        company,
        "whatsapp_meta",
        phone_number_id=META_PHONE_ID,
        access_token=META_TOKEN,
        app_secret=META_SECRET,
    )

    request = wa.requests[-1]
    assert (request.method, request.path) == ("GET", f"/v21.0/{META_PHONE_ID}")
    assert request.access_token == META_TOKEN
    assert channel.display_phone_number == DEFAULT_DISPLAY_PHONE_NUMBER
    assert len(channel.verify_token) >= 24


def test_meta_credentials_it_refuses_save_nothing(company: Company, wa: FakeMeta) -> None:
    with pytest.raises(SetupError, match="Meta refused the phone number id and access token"):
        connect_meta(company, access_token="EAAnotValid")

    with pytest.raises(SetupError, match="Meta refused"):
        connect_meta(company, phone_number_id="999999999999")

    assert channels_of(company) == []


# -- the connect_channel command ----------------------------------------------------------------


def run(*args: str) -> dict:
    out = StringIO()
    call_command("connect_channel", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1  # one JSON object
    return json.loads(lines[0])


def test_the_command_connects_a_telegram_bot(company: Company, tg: FakeTelegram) -> None:
    result = run("--company", "alpha", "--kind", "telegram", "--token", TELEGRAM_TOKEN)

    [channel] = channels_of(company)
    assert result == {
        "id": channel.pk,
        "company": "alpha",
        "kind": "telegram",
        "name": "Telegram",  # the kind's name when none is given
        "webhook_url": f"http://localhost/hooks/telegram/{channel.webhook_id}",
        "secret_token": channel.secret_token,
        "bot_username": "chapi_test_bot",
    }
    assert tg.webhook(TELEGRAM_TOKEN)["secret_token"] == result["secret_token"]  # type: ignore[index]


def test_the_command_takes_another_public_base_url(company: Company, tg: FakeTelegram) -> None:
    result = run(
        "--company", "alpha", "--kind", "telegram", "--token", TELEGRAM_TOKEN,
        "--name", "Ventas", "--base-url", "https://chapi.example.com",
    )  # fmt: skip

    assert result["webhook_url"].startswith("https://chapi.example.com/hooks/telegram/")
    assert tg.webhook(TELEGRAM_TOKEN)["url"] == result["webhook_url"]  # type: ignore[index]
    assert result["name"] == "Ventas"


def test_the_command_connects_a_twilio_sender(company: Company, tw: FakeTwilio) -> None:
    result = run(
        "--company", "alpha", "--kind", "whatsapp_twilio", "--account-sid", TWILIO_SID,
        "--auth-token", TWILIO_TOKEN, "--sender", TWILIO_SENDER,
    )  # fmt: skip

    [channel] = channels_of(company)
    assert result == {
        "id": channel.pk,
        "company": "alpha",
        "kind": "whatsapp_twilio",
        "name": channel.name,
        "webhook_url": f"http://localhost/hooks/twilio/{channel.webhook_id}",
        "status_callback_url": f"http://localhost/hooks/twilio/{channel.webhook_id}/status",
    }
    assert TWILIO_TOKEN not in json.dumps(result)


def test_the_command_connects_a_meta_number(company: Company, wa: FakeMeta) -> None:
    result = run(
        "--company", "alpha", "--kind", "whatsapp_meta", "--phone-number-id", META_PHONE_ID,
        "--access-token", META_TOKEN, "--app-secret", META_SECRET, "--verify-token", "mi-token",
    )  # fmt: skip

    [channel] = channels_of(company)
    assert result == {
        "id": channel.pk,
        "company": "alpha",
        "kind": "whatsapp_meta",
        "name": channel.name,
        "webhook_url": f"http://localhost/hooks/meta/{channel.webhook_id}",
        "verify_token": "mi-token",
        "display_phone_number": DEFAULT_DISPLAY_PHONE_NUMBER,
    }
    assert channel.name == str(ChannelConnection.Kind.WHATSAPP_META.label)
    assert META_TOKEN not in json.dumps(result) and META_SECRET not in json.dumps(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "telegram"], "--kind telegram needs --token"),
        (
            ["--kind", "whatsapp_twilio", "--account-sid", TWILIO_SID],
            "--kind whatsapp_twilio needs --auth-token, --sender",
        ),
        (
            ["--kind", "whatsapp_meta", "--phone-number-id", META_PHONE_ID],
            "--kind whatsapp_meta needs --access-token, --app-secret",
        ),
        (
            [
                "--kind",
                "whatsapp_twilio",
                "--account-sid",
                TWILIO_SID,
                "--auth-token",
                "x",
                "--sender",
                "+14155238886",
            ],
            "--sender must look like whatsapp:+14155238886",
        ),
        (["--kind", "telegram", "--token", "123:nope"], "Telegram refused the bot token"),
        (["--kind", "sms", "--token", TELEGRAM_TOKEN], "invalid choice"),
    ],
    ids=["telegram", "twilio", "meta", "sender", "refused", "kind"],
)
def test_the_command_refuses_missing_or_wrong_options(
    company: Company, tg: FakeTelegram, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("connect_channel", "--company", "alpha", *args, stdout=StringIO())

    assert channels_of(company) == []


def test_the_command_refuses_an_unknown_company(db: None) -> None:
    with pytest.raises(CommandError, match="no company with slug 'nadie'"):
        call_command(
            "connect_channel", "--company", "nadie", "--kind", "telegram", "--token", TELEGRAM_TOKEN
        )


def test_connecting_the_same_account_twice_is_refused(
    company: Company, tg: FakeTelegram, tw: FakeTwilio, wa: FakeMeta
) -> None:
    # E.g. a reloaded form: a second connection would replace the first one's webhook secret.
    first = connect_telegram(company)
    connect_twilio(company)
    connect_meta(company)

    for again in (connect_telegram, connect_twilio, connect_meta):
        with pytest.raises(SetupError, match=r"already connected|ya está conectada"):
            again(company)

    assert len(channels_of(company)) == 3
    assert tg.webhook(TELEGRAM_TOKEN)["secret_token"] == first.secret_token  # type: ignore[index]
    # Once disconnected, the same bot can be connected again.
    with tenant_context(company):
        channel_disconnect(channel=first, actor=SYSTEM)
    assert connect_telegram(company).is_active
