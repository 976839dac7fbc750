"""The dashboard's channels pages: owners and admins connect a Telegram bot or a WhatsApp number
(checked against the local simulators), see its status and the URLs to paste, and disconnect
it; secrets never come back in a page; other roles and other companies are kept out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import Role, User
from apps.channels.models import ChannelConnection, InboundEvent, OutboundMessage
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
    connect_telegram,
    fixture,
    post_telegram,
)
from tests.conftest import logged_in, member, owner
from tests.fakes.meta_server import FakeMeta
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.twilio_server import FakeTwilio

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

CHANNELS = "/dashboard/channels/"


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def client_for(company: Company, user: User) -> Client:
    return english(logged_in(company, user))


@pytest.fixture
def boss(alpha: Company) -> Client:
    return client_for(alpha, owner(alpha))


def html(response: Response) -> str:
    return response.content.decode()


def flashed(response: Response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def connect_form(kind: str, **fields: str) -> dict[str, str]:
    return {"kind": kind, **{f"{kind}-{name}": value for name, value in fields.items()}}


TELEGRAM_FORM = connect_form("telegram", name="Bot de ventas", bot_token=TELEGRAM_TOKEN)
TWILIO_FORM = connect_form(
    "whatsapp_twilio",
    name="WhatsApp ventas",
    account_sid=TWILIO_SID,
    auth_token=TWILIO_TOKEN,
    sender=TWILIO_SENDER,
)
META_FORM = connect_form(
    "whatsapp_meta",
    name="WhatsApp Meta",
    phone_number_id=META_PHONE_ID,
    access_token=META_TOKEN,
    app_secret=META_SECRET,
)


def only_channel(company: Company) -> ChannelConnection:
    with tenant_context(company):
        return ChannelConnection.objects.get()


def pages(client: Client, channel: ChannelConnection) -> list[str]:
    """Every dashboard page about channels, and the company admin's pages of the channel."""
    urls = [
        CHANNELS,
        f"{CHANNELS}{channel.pk}/",
        "/admin/chapi_channels/channelconnection/",
        f"/admin/chapi_channels/channelconnection/{channel.pk}/change/",
    ]
    responses = [client.get(url) for url in urls]
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    return [html(r) for r in responses]


# -- connecting ---------------------------------------------------------------------------------


def test_an_owner_connects_a_telegram_bot_and_never_sees_its_token_again(
    alpha: Company, tg: FakeTelegram, boss: Client
) -> None:
    response = boss.post(CHANNELS, TELEGRAM_FORM)

    assert response.status_code == 200
    assert flashed(response) == ["Channel connected."]
    channel = only_channel(alpha)
    webhook = f"http://localhost/hooks/telegram/{channel.webhook_id}"
    assert webhook in html(response)
    assert "@chapi_test_bot" in html(response)
    registered = tg.webhook(TELEGRAM_TOKEN)
    assert registered is not None
    assert (registered["url"], registered["secret_token"]) == (webhook, channel.secret_token)
    listing, detail, *admin = pages(boss, channel)
    assert "Bot de ventas" in listing and "@chapi_test_bot" in listing and "Connected" in listing
    assert webhook in detail
    for page in [html(response), listing, detail, *admin]:
        assert TELEGRAM_TOKEN not in page
        assert TELEGRAM_TOKEN.partition(":")[2] not in page
        assert channel.secret_token not in page


def test_an_owner_connects_twilio_and_sees_both_urls_but_never_the_auth_token(
    alpha: Company, tw: FakeTwilio, boss: Client
) -> None:
    response = boss.post(CHANNELS, TWILIO_FORM)

    assert response.status_code == 200
    channel = only_channel(alpha)
    assert channel.kind == "whatsapp_twilio"
    assert f"http://localhost/hooks/twilio/{channel.webhook_id}" in html(response)
    assert f"http://localhost/hooks/twilio/{channel.webhook_id}/status" in html(response)
    assert TWILIO_SENDER in html(response)
    for page in [html(response), *pages(boss, channel)]:
        assert TWILIO_TOKEN not in page


def test_metas_verify_token_is_shown_once_right_after_connecting(
    alpha: Company, wa: FakeMeta, boss: Client
) -> None:
    response = boss.post(CHANNELS, META_FORM | {"whatsapp_meta-verify_token": "mi-token-unico-42"})

    assert response.status_code == 200
    channel = only_channel(alpha)
    assert channel.verify_token == "mi-token-unico-42"
    assert "mi-token-unico-42" in html(response)
    assert f"http://localhost/hooks/meta/{channel.webhook_id}" in html(response)
    assert channel.display_phone_number in html(response)
    later = pages(boss, channel)
    for page in later:
        assert "mi-token-unico-42" not in page
    for page in [html(response), *later]:
        assert META_TOKEN not in page and META_SECRET not in page


def test_a_made_up_verify_token_is_shown_once_too(
    alpha: Company, wa: FakeMeta, boss: Client
) -> None:
    response = boss.post(CHANNELS, META_FORM)

    channel = only_channel(alpha)
    assert len(channel.verify_token) >= 24
    assert channel.verify_token in html(response)
    assert all(channel.verify_token not in page for page in pages(boss, channel))


def test_a_token_telegram_refuses_shows_the_error_saves_nothing_and_is_not_echoed(
    alpha: Company, tg: FakeTelegram, boss: Client
) -> None:
    refused = "123456789:AArefusedRefusedRefusedRefusedRefused"

    response = boss.post(CHANNELS, connect_form("telegram", bot_token=refused))

    assert response.status_code == 400
    assert "Telegram refused the bot token" in html(response)
    assert refused not in html(response)
    assert refused.partition(":")[2] not in html(response)
    with tenant_context(alpha):
        assert not ChannelConnection.objects.exists()


def test_twilio_credentials_twilio_refuses_are_not_echoed(
    alpha: Company, tw: FakeTwilio, boss: Client
) -> None:
    wrong = "f" * 32

    response = boss.post(CHANNELS, TWILIO_FORM | {"whatsapp_twilio-auth_token": wrong})

    assert response.status_code == 400
    assert "Twilio refused the account SID and auth token" in html(response)
    assert wrong not in html(response)
    with tenant_context(alpha):
        assert not ChannelConnection.objects.exists()


@pytest.mark.parametrize(
    "form",
    [
        TWILIO_FORM | {"whatsapp_twilio-account_sid": "AC123"},
        TWILIO_FORM | {"whatsapp_twilio-sender": "+14155238886"},
        META_FORM | {"whatsapp_meta-phone_number_id": "abc"},
        connect_form("telegram", bot_token=""),
        {"kind": "sms"},
    ],
    ids=["short-sid", "sender-without-prefix", "phone-id-not-digits", "empty-token", "kind"],
)
def test_an_invalid_form_gets_400_without_asking_the_provider(
    alpha: Company,
    tg: FakeTelegram,
    tw: FakeTwilio,
    wa: FakeMeta,
    boss: Client,
    form: dict[str, str],
) -> None:
    response = boss.post(CHANNELS, form)

    assert response.status_code == 400
    assert tg.requests == [] and tw.requests == [] and wa.requests == []
    with tenant_context(alpha):
        assert not ChannelConnection.objects.exists()


# -- what the channel page shows -----------------------------------------------------------------


def test_the_channel_page_shows_recent_activity_and_delivery_failures(
    company: Company, tg: FakeTelegram, boss: Client, client_public: Client
) -> None:
    channel = connect_telegram(company)
    tg.queue_fault("403_blocked")
    post_telegram(client_public, channel, fixture("telegram_text.json"))
    post_telegram(client_public, channel, fixture("telegram_callback_query.json"))

    page = html(boss.get(f"{CHANNELS}{channel.pk}/"))

    assert "Recent delivery failures" in page
    assert "Forbidden: bot was blocked by the user" in page
    assert "message.text" in page and "update.callback_query" in page
    assert "callback_query updates are not handled" in page
    with tenant_context(company):
        assert InboundEvent.objects.count() == 2
        assert OutboundMessage.objects.get().status == "failed"


# -- disconnecting ------------------------------------------------------------------------------


def test_an_owner_disconnects_a_bot(
    alpha: Company, tg: FakeTelegram, boss: Client, client_public: Client
) -> None:
    channel = connect_telegram(alpha)

    response = boss.post(f"{CHANNELS}{channel.pk}/disconnect/")

    assert response.status_code == 302 and response["Location"] == CHANNELS
    assert tg.requests[-1].api_method == "deleteWebhook"
    assert tg.webhook(TELEGRAM_TOKEN) is None
    with schema_context("public"):
        assert not WebhookRoute.objects.filter(webhook_id=channel.webhook_id).exists()
    assert only_channel(alpha).status == ChannelConnection.Status.DISCONNECTED
    assert "Disconnected" in html(boss.get(CHANNELS))
    assert post_telegram(client_public, channel, fixture("telegram_text.json")).status_code == 404


def test_an_admin_may_manage_channels(alpha: Company, tg: FakeTelegram) -> None:
    admin = client_for(alpha, member(alpha, Role.ADMIN))

    assert admin.get(CHANNELS).status_code == 200
    assert admin.post(CHANNELS, TELEGRAM_FORM).status_code == 200
    channel = only_channel(alpha)
    assert admin.post(f"{CHANNELS}{channel.pk}/disconnect/").status_code == 302


# -- who may see channels -----------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_get_403(alpha: Company, tg: FakeTelegram, role: str) -> None:
    channel = connect_telegram(alpha)
    client = client_for(alpha, member(alpha, role))
    calls = len(tg.requests)

    assert client.get(CHANNELS).status_code == 403
    assert client.get(f"{CHANNELS}{channel.pk}/").status_code == 403
    assert client.post(CHANNELS, TELEGRAM_FORM).status_code == 403
    assert client.post(f"{CHANNELS}{channel.pk}/disconnect/").status_code == 403

    assert len(tg.requests) == calls  # nothing asked of Telegram
    assert only_channel(alpha).is_active


def test_anonymous_visitors_are_sent_to_sign_in(alpha: Company, client_alpha: Client) -> None:
    response = client_alpha.get(CHANNELS)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_member_of_another_company_cannot_see_or_disconnect_its_channels(
    alpha: Company, beta: Company, tg: FakeTelegram
) -> None:
    channel = connect_telegram(alpha)
    with tenant_context(alpha):
        ChannelConnection.objects.filter(pk=channel.pk).update(name="Canal secreto de Alpha")
    with tenant_context(beta):
        assert not ChannelConnection.objects.filter(pk=channel.pk).exists()
    outsider = client_for(beta, owner(beta))

    assert outsider.get(f"{CHANNELS}{channel.pk}/").status_code == 404
    assert outsider.post(f"{CHANNELS}{channel.pk}/disconnect/").status_code == 404
    listing = html(outsider.get(CHANNELS))
    assert "Canal secreto de Alpha" not in listing
    assert channel.webhook_id not in listing
    assert only_channel(alpha).is_active


def test_channels_keep_their_history_after_disconnecting(
    company: Company, tg: FakeTelegram, boss: Client, client_public: Client
) -> None:
    channel = connect_telegram(company)
    post_telegram(client_public, channel, fixture("telegram_text.json"))

    boss.post(f"{CHANNELS}{channel.pk}/disconnect/")

    with tenant_context(company):
        assert Message.objects.count() == 2
    assert "message.text" in html(boss.get(f"{CHANNELS}{channel.pk}/"))


def test_the_company_admin_lists_channels_and_sends_add_to_the_connect_form(
    alpha: Company, telegram: ChannelConnection
) -> None:
    client = logged_in(alpha, owner(alpha))

    listing = client.get("/admin/chapi_channels/channelconnection/")
    add = client.get("/admin/chapi_channels/channelconnection/add/")

    assert listing.status_code == 200
    assert telegram.name in listing.content.decode()
    assert telegram.bot_token not in listing.content.decode()
    assert (add.status_code, add["Location"]) == (302, "/dashboard/channels/")
