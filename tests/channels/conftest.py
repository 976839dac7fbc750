"""Fixtures of the messaging channel tests (Telegram, WhatsApp through Twilio and Meta).

Everything runs in-process: providers' webhooks are posted through Django's test client on the
public host (`client_public`), Celery is eager, and `transaction.on_commit` runs its callback at
once (inside the test's transaction it would never fire). So one webhook request stores the
message, generates the reply (the company's assistant points at a local FakeOpenAI, whose
default answer is "Echo: <the last user message>") and delivers it to a local simulator of the
provider's API (tests/fakes/), whose `sent(...)` records are what the person would see.

`CHANNEL_BURST_SECONDS` is 0 (eager tasks ignore countdowns anyway); bursts are tested by
storing several messages before the reply task runs (`held_replies`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.test import Client
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.assistants.models import Provider
from apps.assistants.services import assistant_profile_get
from apps.audit.services import SYSTEM
from apps.channels import services as channel_services
from apps.channels.models import ChannelConnection
from apps.channels.services import channel_connect
from apps.tenants.models import Company
from chapi.celery import app as celery_app
from tests.fakes import meta_server, telegram_server, twilio_server
from tests.fakes.meta_server import FakeMeta
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.twilio_server import FakeTwilio

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC_BASE_URL = "http://localhost"  # the test client's public host is `localhost`
MODEL_KEY = "sk-test-channels-0123456789abcdef0123456789"

# Credentials the simulators know (each company's own).
TELEGRAM_TOKEN = telegram_server.DEFAULT_TOKEN
TELEGRAM_TOKEN_BETA = "7000000002:AAHbetaBetaBetaBetaBetaBetaBetaBeta12"
TWILIO_SID = twilio_server.DEFAULT_ACCOUNT_SID
TWILIO_TOKEN = twilio_server.DEFAULT_AUTH_TOKEN
TWILIO_SENDER = twilio_server.DEFAULT_SENDER
META_PHONE_ID = meta_server.DEFAULT_PHONE_NUMBER_ID
META_TOKEN = meta_server.DEFAULT_ACCESS_TOKEN
META_SECRET = meta_server.DEFAULT_APP_SECRET


def fixture(name: str) -> dict[str, Any]:
    """A recorded, real-shaped payload from tests/channels/fixtures/."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


# -- the simulators (one each per session, reset around every test) -----------------------------


@pytest.fixture(scope="session")
def _telegram_server() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture(scope="session")
def _twilio_server() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture(scope="session")
def _meta_server() -> Iterator[FakeMeta]:
    with FakeMeta() as server:
        yield server


@pytest.fixture(scope="session")
def _openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _telegram_clean(server: FakeTelegram) -> None:
    server.reset()
    server.require_https_webhook = False  # the webhook is http://localhost/hooks/...
    server.add_bot(TELEGRAM_TOKEN_BETA, "beta_shop_bot")


@pytest.fixture
def tg(_telegram_server: FakeTelegram) -> Iterator[FakeTelegram]:
    _telegram_clean(_telegram_server)
    yield _telegram_server
    _telegram_clean(_telegram_server)


@pytest.fixture
def tw(_twilio_server: FakeTwilio) -> Iterator[FakeTwilio]:
    _twilio_server.reset()
    yield _twilio_server
    _twilio_server.reset()


@pytest.fixture
def wa(_meta_server: FakeMeta) -> Iterator[FakeMeta]:
    _meta_server.reset()
    yield _meta_server
    _meta_server.reset()


@pytest.fixture
def llm(_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    _openai_server.reset()
    yield _openai_server
    _openai_server.reset()


def _close_model_clients() -> None:
    # The provider caches one SDK client per event loop, key and endpoint, built with the
    # timeouts in force at the time: drop them so each test's settings apply.
    from apps.assistants.providers import openai as openai_provider

    openai_provider.clients_close()


@pytest.fixture(autouse=True)
def _channels_in_process(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    _telegram_server: FakeTelegram,
    _twilio_server: FakeTwilio,
    _meta_server: FakeMeta,
) -> Iterator[None]:
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    settings.TELEGRAM_API_BASE_URL = _telegram_server.base_url
    settings.TWILIO_API_BASE_URL = _twilio_server.base_url
    settings.WHATSAPP_CLOUD_API_BASE_URL = _meta_server.base_url
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
    settings.CHANNEL_BURST_SECONDS = 0
    settings.CHANNEL_HTTP_TIMEOUT = 5.0
    settings.CHANNEL_SEND_MAX_ATTEMPTS = 5
    settings.OPENAI_API_KEY = ""
    settings.LLM_BACKOFF_BASE_SECONDS = 0.01
    settings.LLM_READ_TIMEOUT = 5.0
    settings.LLM_CONNECT_TIMEOUT = 1.0
    _close_model_clients()
    yield
    _close_model_clients()


def assistant_on(company: Company, llm: FakeOpenAI, **changes: Any) -> None:
    """Point `company`'s assistant at the FakeOpenAI with its own key."""
    with tenant_context(company):
        profile = assistant_profile_get()
        profile.provider = Provider.AUTO
        profile.api_base_url = llm.base_url
        profile.api_key = MODEL_KEY
        profile.model = ""
        for name, value in changes.items():
            setattr(profile, name, value)
        profile.save()


@pytest.fixture
def company(alpha: Company, llm: FakeOpenAI) -> Company:
    """alpha, its assistant answering through the FakeOpenAI."""
    assistant_on(alpha, llm)
    return alpha


# -- connecting -------------------------------------------------------------------------------


def connect(company: Company, kind: str, name: str = "", **credentials: str) -> ChannelConnection:
    with tenant_context(company):
        return channel_connect(
            company=company, kind=kind, name=name, credentials=credentials, actor=SYSTEM
        )


def connect_telegram(company: Company, token: str = TELEGRAM_TOKEN) -> ChannelConnection:
    return connect(company, "telegram", "Bot de ventas", bot_token=token)


def connect_twilio(company: Company, **overrides: str) -> ChannelConnection:
    credentials = {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "sender": TWILIO_SENDER}
    return connect(company, "whatsapp_twilio", "WhatsApp Twilio", **(credentials | overrides))


def connect_meta(company: Company, **overrides: str) -> ChannelConnection:
    credentials = {
        "phone_number_id": META_PHONE_ID,
        "access_token": META_TOKEN,
        "app_secret": META_SECRET,
        "verify_token": "mi-token-de-verificacion",
    }
    return connect(company, "whatsapp_meta", "WhatsApp Meta", **(credentials | overrides))


@pytest.fixture
def telegram(company: Company, tg: FakeTelegram) -> ChannelConnection:
    return connect_telegram(company)


@pytest.fixture
def twilio(company: Company, tw: FakeTwilio) -> ChannelConnection:
    return connect_twilio(company)


@pytest.fixture
def meta(company: Company, wa: FakeMeta) -> ChannelConnection:
    return connect_meta(company)


# -- what providers post ------------------------------------------------------------------------


def hook_path(channel: ChannelConnection, *, status: bool = False) -> str:
    """The path of the channel's webhook (its URL without PUBLIC_BASE_URL)."""
    url = channel_services.webhook_url(channel, status=status)
    assert url.startswith(PUBLIC_BASE_URL + "/hooks/")
    return url.removeprefix(PUBLIC_BASE_URL)


def post_telegram(
    client: Client,
    channel: ChannelConnection,
    update: dict[str, Any] | bytes,
    *,
    secret: str | None = None,
    path: str | None = None,
) -> Response:
    """POST an update as Telegram does (JSON, X-Telegram-Bot-Api-Secret-Token); `secret=""`
    sends none."""
    body = update if isinstance(update, bytes) else json.dumps(update, ensure_ascii=False)
    token = channel.secret_token if secret is None else secret
    headers = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": token} if token else {}
    return client.post(
        path or hook_path(channel), data=body, content_type="application/json", **headers
    )


def post_twilio(
    client: Client,
    channel: ChannelConnection,
    params: dict[str, str],
    *,
    status: bool = False,
    auth_token: str | None = None,
    signature: str | None = None,
    path: str | None = None,
) -> Response:
    """POST a form as Twilio does, signed over PUBLIC_BASE_URL + path (`signature=""`: none)."""
    path = path or hook_path(channel, status=status)
    if signature is None:
        signature = twilio_server.signature(
            PUBLIC_BASE_URL + path, params, auth_token or channel.auth_token
        )
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


def post_meta(
    client: Client,
    channel: ChannelConnection,
    payload: dict[str, Any] | bytes,
    *,
    app_secret: str | None = None,
    signature: str | None = None,
    path: str | None = None,
) -> Response:
    """POST a notification as Meta does (compact JSON, X-Hub-Signature-256 over the raw
    bytes; `signature=""`: none)."""
    body = payload if isinstance(payload, bytes) else meta_server.payload_bytes(payload)
    if signature is None:
        signature = meta_server.signature(body, app_secret or channel.app_secret)
    headers = {"HTTP_X_HUB_SIGNATURE_256": signature} if signature else {}
    return client.post(
        path or hook_path(channel), data=body, content_type="application/json", **headers
    )


@pytest.fixture
def eager_retries() -> Iterator[None]:
    """Let eager tasks retry as a worker would (at once: eager mode ignores the countdown).

    With `task_eager_propagates` (tests/conftest.py) an eager task's `self.retry()` raises
    `celery.exceptions.Retry` to the caller instead; without it, `Task.apply` runs the retry
    signature inline with `request.retries` + 1, so the attempt numbers are the real ones."""
    before = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = before


# -- holding replies back (bursts, takeovers) ---------------------------------------------------


@pytest.fixture
def held_replies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of the visitor messages whose reply task the channels scheduled, without running
    it: the test runs `reply_generate` itself, in the order it wants."""
    held: list[int] = []

    def hold(*, message_id: int, countdown: float = 0, **kwargs: Any) -> None:
        held.append(message_id)

    monkeypatch.setattr(channel_services, "reply_schedule", hold)
    return held


def chat_requests(llm: FakeOpenAI) -> list[Any]:
    return [r for r in llm.requests if r.path == "/v1/chat/completions" and not _reads_lead(r)]


def user_texts(request: Any) -> list[str]:
    """The user turns a chat completion request carried, in order."""
    return [str(m.get("content")) for m in request.json["messages"] if m.get("role") == "user"]


def _reads_lead(request: Any) -> bool:
    """The model's structured reading of a lead (apps.leads.extract_model), not a reply."""
    return bool((request.json or {}).get("response_format"))
