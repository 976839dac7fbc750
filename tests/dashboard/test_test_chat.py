"""The "Test your assistant" page: the real reply pipeline from the dashboard."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.accounts.models import Role, User
from apps.assistants.offline import Turn, offline_reply
from apps.assistants.prompting import assistant_config_load, system_prompt_compose
from apps.assistants.services import assistant_profile_get
from apps.conversations.models import Channel, Contact, Conversation, Message, UsageMonth
from apps.tenants.models import Company
from chapi import aio
from tests.conftest import host, logged_in, member, owner
from tests.fakes.openai_server import FakeOpenAI

PAGE = "/dashboard/assistant/test/"
RESET = "/dashboard/assistant/test/reset/"
PROVIDER_KEY = "sk-test-dashboard-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_platform_model_key(settings: Settings) -> None:
    # Without a key the assistant answers with the offline responder: no network in tests.
    settings.OPENAI_API_KEY = ""


def _close_model_clients() -> None:
    # The provider caches one SDK client per event loop, key and endpoint: drop this test's.
    from apps.assistants.providers import openai as openai_provider

    clients = list(openai_provider._CLIENTS.values())
    openai_provider._CLIENTS.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            aio.run(client.close())


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAI, alpha: Company, settings: Settings) -> Iterator[FakeOpenAI]:
    """alpha's assistant on a local OpenAI-compatible server, with the company's own key."""
    settings.LLM_MAX_ATTEMPTS = 1
    fake_server.reset()
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.api_base_url = fake_server.base_url
        profile.api_key = PROVIDER_KEY
        profile.model = "gpt-4o-mini"
        profile.bot_name = "Lupita"
        profile.save()
    yield fake_server
    fake_server.reset()
    _close_model_clients()


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def client_for(company: Company, user: User) -> Client:
    return english(logged_in(company, user))


def chat_messages(company: Company, user: User) -> list[Message]:
    with tenant_context(company):
        return list(
            Message.objects.filter(
                conversation__channel=Channel.TEST, conversation__session_id=f"dashboard-{user.pk}"
            ).order_by("id")
        )


def expected_offline_answer(company: Company, text: str, history: list[Turn] | None = None) -> str:
    with tenant_context(company):
        config = assistant_config_load(profile=assistant_profile_get(), company_name=company.name)
        return offline_reply(config.offline_profile(), history or [], text).text


def test_an_agent_gets_an_answer_from_the_offline_responder(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    client = client_for(alpha, agent)
    expected = expected_offline_answer(alpha, "Hola, ¿qué horario tienen?")

    response = client.post(PAGE, {"text": "Hola, ¿qué horario tienen?"})

    assert response.status_code == 302
    assert response["Location"] == PAGE
    visitor, answer = chat_messages(alpha, agent)
    assert (visitor.role, visitor.text, visitor.channel) == (
        Message.Role.VISITOR,
        "Hola, ¿qué horario tienen?",
        Channel.TEST,
    )
    assert answer.reply_to_id == visitor.pk
    assert (answer.role, answer.status, answer.text) == (
        Message.Role.ASSISTANT,
        Message.Status.COMPLETED,
        expected,
    )
    # Offline for want of a key is normal operation, not a fallback.
    assert (answer.provider, answer.model, answer.fallback, answer.error) == (
        "offline",
        "offline",
        False,
        "",
    )
    assert answer.input_tokens == 0
    assert answer.output_tokens > 0

    page = client.get(PAGE)

    assert page.status_code == 200
    assert page.context["last_answer"] == answer
    assert [m.pk for m in page.context["history"]] == [visitor.pk, answer.pk]
    html = page.content.decode()
    assert escape(expected) in html
    assert "<dt>Provider</dt><dd>offline</dd>" in html
    assert "<dt>Model</dt><dd>offline</dd>" in html
    assert f"<dt>Tokens</dt><dd>0 in · {answer.output_tokens} out</dd>" in html
    assert f"<dt>Latency</dt><dd>{answer.latency_ms} ms</dd>" in html
    assert "<dt>Offline fallback</dt><dd>No</dd>" in html
    assert "<dt>Reason</dt>" not in html
    assert "Model in use: Offline responder (no API key configured)" in html


def test_the_conversation_goes_on_across_messages(alpha: Company) -> None:
    boss = owner(alpha)
    client = client_for(alpha, boss)

    client.post(PAGE, {"text": "Hola"})
    client.post(PAGE, {"text": "¿Cuánto cuesta?"})

    messages = chat_messages(alpha, boss)
    assert [(m.role, m.status) for m in messages] == [
        ("visitor", "received"),
        ("assistant", "completed"),
        ("visitor", "received"),
        ("assistant", "completed"),
    ]
    assert messages[2].text == "¿Cuánto cuesta?"
    # The second answer was given knowing the first exchange.
    history = [Turn("user", "Hola"), Turn("assistant", messages[1].text)]
    assert messages[3].text == expected_offline_answer(alpha, "¿Cuánto cuesta?", history)
    with tenant_context(alpha):
        assert Conversation.objects.filter(channel=Channel.TEST).count() == 1
    assert client.get(PAGE).context["last_answer"] == messages[3]


def test_the_page_shows_the_composed_system_prompt_with_the_bot_name(alpha: Company) -> None:
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.bot_name = "Lupita"
        profile.save()
        expected = system_prompt_compose(
            assistant_config_load(profile=profile, company_name=alpha.name)
        )

    response = client_for(alpha, owner(alpha)).get(PAGE)

    assert response.status_code == 200
    assert response.context["system_prompt"] == expected
    assert "Lupita" in expected
    assert f'<pre class="prompt">{escape(expected)}</pre>' in response.content.decode()
    assert "<summary>System prompt</summary>" in response.content.decode()


def test_each_member_has_their_own_test_conversation(alpha: Company) -> None:
    first, second = member(alpha, Role.AGENT), member(alpha, Role.ADMIN)
    client_for(alpha, first).post(PAGE, {"text": "Soy el primero"})

    response = client_for(alpha, second).get(PAGE)

    assert response.context["history"] == []
    assert response.context["last_answer"] is None
    assert "Soy el primero" not in response.content.decode()


def test_starting_over_deletes_only_this_members_test_conversation(alpha: Company) -> None:
    agent, other = member(alpha, Role.AGENT), member(alpha, Role.AGENT)
    client = client_for(alpha, agent)
    client.post(PAGE, {"text": "Hola"})
    client_for(alpha, other).post(PAGE, {"text": "Hola también"})
    with tenant_context(alpha):
        session = f"dashboard-{agent.pk}"
        web = Conversation.objects.create(
            contact=Contact.objects.create(channel=Channel.WEB, external_id=session),
            channel=Channel.WEB,
            session_id=session,
        )

    response = client.post(RESET)

    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert chat_messages(alpha, agent) == []
    assert len(chat_messages(alpha, other)) == 2
    with tenant_context(alpha):
        assert not Contact.objects.filter(
            channel=Channel.TEST, external_id=f"dashboard-{agent.pk}"
        ).exists()
        assert Conversation.objects.filter(pk=web.pk).exists()
    assert client.get(PAGE).context["history"] == []


def test_an_empty_message_is_refused(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)

    response = client_for(alpha, agent).post(PAGE, {"text": "  "})

    assert response.status_code == 400
    assert response.context["form"].errors == {"text": ["This field is required."]}
    assert chat_messages(alpha, agent) == []


def test_viewers_cannot_use_the_test_chat(alpha: Company) -> None:
    viewer = member(alpha, Role.VIEWER)
    client = client_for(alpha, viewer)

    responses = [client.get(PAGE), client.post(PAGE, {"text": "Hola"}), client.post(RESET)]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert chat_messages(alpha, viewer) == []
    with tenant_context(alpha):
        assert not Conversation.objects.filter(channel=Channel.TEST).exists()


def test_anonymous_visitors_are_sent_to_log_in(alpha: Company) -> None:
    client = Client(HTTP_HOST=host(alpha))

    responses = {PAGE: client.get(PAGE), RESET: client.post(RESET)}
    posted = client.post(PAGE, {"text": "Hola"})

    for path, response in responses.items():
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}"
    assert posted.status_code == 302
    with tenant_context(alpha):
        assert not Conversation.objects.filter(channel=Channel.TEST).exists()


def test_another_companys_member_never_sees_or_deletes_this_test_chat(
    alpha: Company, beta: Company
) -> None:
    alpha_owner, beta_owner = owner(alpha), owner(beta)
    client_for(alpha, alpha_owner).post(PAGE, {"text": "Secreto de Alpha"})
    beta_client = client_for(beta, beta_owner)

    page = beta_client.get(PAGE)
    reset = beta_client.post(RESET)

    assert page.status_code == 200
    assert page.context["history"] == []
    assert "Secreto de Alpha" not in page.content.decode()
    assert reset.status_code == 302
    assert [m.text for m in chat_messages(alpha, alpha_owner)][:1] == ["Secreto de Alpha"]
    assert len(chat_messages(alpha, alpha_owner)) == 2
    with tenant_context(beta):
        assert not Message.objects.exists()

    beta_client.defaults["HTTP_HOST"] = host(alpha)
    foreign = beta_client.post(RESET)

    assert foreign.status_code == 302
    assert foreign["Location"] == f"/accounts/login/?next={RESET}"
    assert len(chat_messages(alpha, alpha_owner)) == 2


def test_the_companys_model_answers_with_the_composed_prompt(
    alpha: Company, fake: FakeOpenAI
) -> None:
    boss = owner(alpha)
    client = client_for(alpha, boss)
    fake.queue_reply("¡Hola! Soy Lupita, ¿en qué te ayudo?")

    client.post(PAGE, {"text": "Hola"})

    _, answer = chat_messages(alpha, boss)
    assert (answer.text, answer.status) == (
        "¡Hola! Soy Lupita, ¿en qué te ayudo?",
        Message.Status.COMPLETED,
    )
    assert (answer.provider, answer.model, answer.fallback, answer.error) == (
        "openai",
        "gpt-4o-mini",
        False,
        "",
    )
    assert answer.input_tokens > 0
    assert answer.output_tokens > 0
    [request] = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    assert request.api_key == PROVIDER_KEY
    page = client.get(PAGE)
    prompt = page.context["system_prompt"]
    assert "Lupita" in prompt
    # The page shows the prompt the next message will be sent with: the same, except that the
    # lead's state moved on (the assistant asked about the need, so it will ask the budget).
    sent = request.json["messages"][0]["content"]
    base, _, lead_sent = sent.partition("\n\nLead qualification")
    shown_base, _, lead_shown = prompt.partition("\n\nLead qualification")
    assert base == shown_base
    assert "ask about need only" in lead_sent
    assert "ask about budget only" in lead_shown
    assert request.json["messages"][1:] == [{"role": "user", "content": "Hola"}]
    html = page.content.decode()
    assert "Model in use: OpenAI-compatible: gpt-4o-mini" in html
    assert "<dt>Provider</dt><dd>openai</dd>" in html
    assert "<dt>Model</dt><dd>gpt-4o-mini</dd>" in html
    assert f"<dt>Tokens</dt><dd>{answer.input_tokens} in · {answer.output_tokens} out</dd>" in html
    assert "<dt>Offline fallback</dt><dd>No</dd>" in html
    assert PROVIDER_KEY not in html


def test_a_provider_error_falls_back_to_the_offline_responder_and_says_why(
    alpha: Company, fake: FakeOpenAI
) -> None:
    agent = member(alpha, Role.AGENT)
    client = client_for(alpha, agent)
    fake.queue_fault("401")
    expected = expected_offline_answer(alpha, "Hola")

    client.post(PAGE, {"text": "Hola"})

    _, answer = chat_messages(alpha, agent)
    assert (answer.text, answer.provider, answer.fallback, answer.error) == (
        expected,
        "offline",
        True,
        "invalid_api_key",
    )
    html = client.get(PAGE).content.decode()
    assert "<dt>Offline fallback</dt><dd>Yes</dd>" in html
    assert "<dt>Reason</dt><dd><code>invalid_api_key</code></dd>" in html


def test_an_exhausted_budget_answers_offline_and_says_why(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    with tenant_context(alpha):
        profile = assistant_profile_get()
        profile.monthly_token_budget = 100
        profile.save()
        UsageMonth.objects.create(month=timezone.now().date().replace(day=1), input_tokens=100)
    client = client_for(alpha, agent)

    client.post(PAGE, {"text": "Hola"})

    _, answer = chat_messages(alpha, agent)
    assert (answer.provider, answer.fallback, answer.error) == ("offline", True, "budget_exhausted")
    html = client.get(PAGE).content.decode()
    assert "<dt>Offline fallback</dt><dd>Yes</dd>" in html
    assert "<dt>Reason</dt><dd><code>budget_exhausted</code></dd>" in html
