"""The webhook routes on the public host: routing by webhook id to the company, what is refused
before anything is stored (unknown, disconnected, suspended, oversized), and that one
company's webhook never reaches another company's data."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from apps.audit.services import SYSTEM
from apps.channels.models import ChannelConnection, InboundEvent
from apps.channels.services import channel_disconnect
from apps.conversations.models import Contact, Conversation, Message
from apps.tenants.models import Company
from apps.tenants.services import company_suspend
from apps.webhooks.models import WebhookRoute
from tests.channels.conftest import (
    TELEGRAM_TOKEN,
    TELEGRAM_TOKEN_BETA,
    assistant_on,
    connect_telegram,
    fixture,
    hook_path,
    post_meta,
    post_telegram,
    post_twilio,
)
from tests.fakes.meta_server import FakeMeta
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.twilio_server import FakeTwilio

CHAT = 5120933746


def counts(company: Company) -> tuple[int, int, int]:
    """(messages, inbound events, contacts) in `company`'s schema."""
    with tenant_context(company):
        return Message.objects.count(), InboundEvent.objects.count(), Contact.objects.count()


# -- refused before anything is stored ------------------------------------------------------------


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 3 * 1024 * 1024])
def test_an_oversized_body_gets_413_and_nothing_is_stored(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    client_public: Client,
    size: int,
) -> None:
    update = fixture("telegram_text.json")
    update["message"]["text"] = "a" * size

    response = post_telegram(client_public, telegram, update)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert counts(company) == (0, 0, 0)
    assert tg.sent() == []


def test_an_oversized_twilio_or_meta_post_gets_413(
    company: Company,
    twilio: ChannelConnection,
    meta: ChannelConnection,
    client_public: Client,
) -> None:
    params = fixture("twilio_inbound_text.json") | {"Body": "b" * (1024 * 1024 + 10)}
    payload = fixture("meta_text.json")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "c" * 1_100_000

    assert post_twilio(client_public, twilio, params).status_code == 413
    assert post_meta(client_public, meta, payload).status_code == 413
    assert counts(company) == (0, 0, 0)


@pytest.mark.parametrize(
    "path",
    [
        "/hooks/telegram/no-such-webhook",
        "/hooks/twilio/no-such-webhook",
        "/hooks/meta/no-such-webhook",
        "/hooks/twilio/no-such-webhook/status",
        "/hooks/viber/no-such-webhook",
    ],
)
def test_an_unknown_webhook_gets_404(
    company: Company, telegram: ChannelConnection, client_public: Client, path: str
) -> None:
    response = post_telegram(client_public, telegram, fixture("telegram_text.json"), path=path)

    assert response.status_code == 404
    assert counts(company) == (0, 0, 0)


def test_a_route_whose_kind_differs_from_the_path_gets_404(
    company: Company,
    telegram: ChannelConnection,
    twilio: ChannelConnection,
    meta: ChannelConnection,
    client_public: Client,
) -> None:
    # The Telegram channel's webhook id under the Twilio and Meta paths, and so on.
    as_twilio = f"/hooks/twilio/{telegram.webhook_id}"
    as_telegram = f"/hooks/telegram/{meta.webhook_id}"
    as_meta = f"/hooks/meta/{twilio.webhook_id}"

    assert (
        post_twilio(
            client_public,
            telegram,
            fixture("twilio_inbound_text.json"),
            path=as_twilio,
            auth_token=twilio.auth_token,
        ).status_code
        == 404
    )
    assert (
        post_telegram(
            client_public, telegram, fixture("telegram_text.json"), path=as_telegram
        ).status_code
        == 404
    )
    assert (
        post_meta(client_public, meta, fixture("meta_text.json"), path=as_meta).status_code == 404
    )
    query = {"hub.mode": "subscribe", "hub.challenge": "7", "hub.verify_token": "x"}
    assert client_public.get(as_meta, query).status_code == 404
    assert counts(company) == (0, 0, 0)


def test_a_get_is_only_meta_s_handshake_and_other_methods_are_refused(
    company: Company, telegram: ChannelConnection, client_public: Client
) -> None:
    assert client_public.get(hook_path(telegram)).status_code == 403
    assert (
        client_public.put(hook_path(telegram), b"{}", content_type="application/json").status_code
        == 405
    )
    assert client_public.delete(hook_path(telegram)).status_code == 405


def test_a_disconnected_channel_gets_404(
    company: Company,
    telegram: ChannelConnection,
    tg: FakeTelegram,
    client_public: Client,
) -> None:
    post_telegram(client_public, telegram, fixture("telegram_text.json"))
    with tenant_context(company):
        channel_disconnect(channel=ChannelConnection.objects.get(pk=telegram.pk), actor=SYSTEM)

    later = fixture("telegram_text.json") | {"update_id": 734091199}
    response = post_telegram(client_public, telegram, later)

    assert response.status_code == 404
    assert counts(company) == (2, 1, 1)  # the history is kept; nothing new


def test_a_channel_marked_disconnected_with_its_route_left_gets_404(
    company: Company, telegram: ChannelConnection, client_public: Client
) -> None:
    with tenant_context(company):
        ChannelConnection.objects.filter(pk=telegram.pk).update(
            status=ChannelConnection.Status.DISCONNECTED
        )
    assert WebhookRoute.objects.filter(webhook_id=telegram.webhook_id).exists()

    assert post_telegram(client_public, telegram, fixture("telegram_text.json")).status_code == 404
    assert counts(company) == (0, 0, 0)


def test_a_suspended_companys_webhooks_get_403_and_nothing_is_stored(
    company: Company,
    telegram: ChannelConnection,
    meta: ChannelConnection,
    tg: FakeTelegram,
    wa: FakeMeta,
    client_public: Client,
) -> None:
    company_suspend(company=company, actor=SYSTEM, reason="impago")

    telegram_response = post_telegram(client_public, telegram, fixture("telegram_text.json"))
    meta_response = post_meta(client_public, meta, fixture("meta_text.json"))
    handshake = client_public.get(
        hook_path(meta),
        {
            "hub.mode": "subscribe",
            "hub.challenge": "9",
            "hub.verify_token": "mi-token-de-verificacion",
        },
    )

    assert telegram_response.status_code == meta_response.status_code == 403
    assert telegram_response.json()["error"]["code"] == "company_suspended"
    assert handshake.status_code == 403
    assert counts(company) == (0, 0, 0)
    assert tg.sent() == [] and wa.sent() == []


# -- isolation between companies ---------------------------------------------------------------


@pytest.fixture
def both(
    company: Company, beta: Company, tg: FakeTelegram, llm: FakeOpenAI
) -> tuple[ChannelConnection, ChannelConnection]:
    """alpha's and beta's own Telegram bots."""
    assistant_on(beta, llm)
    return connect_telegram(company, TELEGRAM_TOKEN), connect_telegram(beta, TELEGRAM_TOKEN_BETA)


def test_a_companys_webhook_stores_in_its_own_schema_only_and_answers_with_its_own_bot(
    company: Company,
    beta: Company,
    both: tuple[ChannelConnection, ChannelConnection],
    tg: FakeTelegram,
    client_public: Client,
) -> None:
    alpha_bot, beta_bot = both

    assert post_telegram(client_public, alpha_bot, fixture("telegram_text.json")).status_code == 200

    assert counts(company) == (2, 1, 1)
    assert counts(beta) == (0, 0, 0)
    assert len(tg.sent(token=TELEGRAM_TOKEN)) == 1
    assert tg.sent(token=TELEGRAM_TOKEN_BETA) == []

    other = fixture("telegram_text.json") | {"update_id": 1}
    assert post_telegram(client_public, beta_bot, other).status_code == 200
    assert counts(beta) == (2, 1, 1)
    assert counts(company) == (2, 1, 1)
    assert len(tg.sent(token=TELEGRAM_TOKEN_BETA)) == 1
    with tenant_context(beta):
        assert Conversation.objects.get().session_id == f"{beta_bot.pk}:{CHAT}"


def test_another_companys_secret_is_refused_on_a_companys_url(
    company: Company,
    beta: Company,
    both: tuple[ChannelConnection, ChannelConnection],
    client_public: Client,
) -> None:
    alpha_bot, beta_bot = both

    response = post_telegram(
        client_public, alpha_bot, fixture("telegram_text.json"), secret=beta_bot.secret_token
    )

    assert response.status_code == 403
    assert counts(company) == (0, 0, 0)
    assert counts(beta) == (0, 0, 0)


def test_routes_live_in_the_public_schema_and_point_at_their_company(
    company: Company,
    beta: Company,
    both: tuple[ChannelConnection, ChannelConnection],
) -> None:
    alpha_bot, beta_bot = both
    with schema_context("public"):
        routes = {
            r.webhook_id: (r.company_id, r.kind)
            for r in WebhookRoute.objects.filter(
                webhook_id__in=[alpha_bot.webhook_id, beta_bot.webhook_id]
            )
        }
    assert routes == {
        alpha_bot.webhook_id: (company.pk, "telegram"),
        beta_bot.webhook_id: (beta.pk, "telegram"),
    }
    assert alpha_bot.webhook_id != beta_bot.webhook_id


def test_twilio_and_meta_webhooks_are_isolated_too(
    company: Company,
    beta: Company,
    twilio: ChannelConnection,
    meta: ChannelConnection,
    tw: FakeTwilio,
    wa: FakeMeta,
    client_public: Client,
) -> None:
    post_twilio(client_public, twilio, fixture("twilio_inbound_text.json"))
    post_meta(client_public, meta, fixture("meta_text.json"))

    assert counts(company) == (4, 2, 2)
    assert counts(beta) == (0, 0, 0)
